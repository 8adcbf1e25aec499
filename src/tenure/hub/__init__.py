"""The event hub: typed domain events, the transactional outbox and its dispatcher."""
