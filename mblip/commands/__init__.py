"""The command handlers, one module per command group; ``mblip.cli`` imports a group only to run one of its commands."""
