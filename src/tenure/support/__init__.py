"""Support interactions and survey answers (NPS, CSAT)."""
