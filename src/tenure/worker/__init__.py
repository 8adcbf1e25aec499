"""Background work: the outbox dispatcher, webhook sending and periodic jobs (huey)."""
