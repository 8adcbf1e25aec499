"""Accounts (the customer's customers), their contacts and subscription history."""
