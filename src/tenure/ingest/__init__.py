"""Ingestion of product events: raw events and the daily usage rollup."""
