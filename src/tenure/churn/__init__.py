"""Churn prediction: the churn definition, point-in-time features and datasets, metrics."""
