"""Renraku appliance core: config, database, models and the business logic every service shares.

Dependencies point inward: the web UI (``webui``) and the MTA (``mta``) import this
package; this package never imports them, nor Flask or aiosmtpd.
"""
