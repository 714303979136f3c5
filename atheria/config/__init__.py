"""Config helpers: where conf/ lives, resolvers used by it, and validation of a composed config."""
from atheria.config.resolvers import CONF_DIR, register_resolvers
from atheria.config.validate import ConfigError, check_group_choices, check_runtime, validate

__all__ = ["CONF_DIR", "register_resolvers", "ConfigError", "check_group_choices", "check_runtime", "validate"]
