"""The appliance's own MTA: outbound delivery and inbound SMTP (an adapter over the core)."""
