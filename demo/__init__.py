"""Demo data for `make up`: members, months of orders, refunds, activity and feedback."""
