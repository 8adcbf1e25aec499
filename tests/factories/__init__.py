"""Small factory functions per domain for arranging test data."""
