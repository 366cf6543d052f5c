"""On-device vision: TFLite runtime, detection, landmarks, alignment, embedding."""
