"""MQTT: the topic contract, client, shard sync, outbox, authorization, telemetry."""
