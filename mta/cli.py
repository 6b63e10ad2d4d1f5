"""`appliance mta ...` commands, added to the core CLI through an entry point."""
import click


@click.group("mta")
def mta() -> None:
    """Mail transfer: the capture sink for now, the own MTA later."""
