"""Config helpers: where conf/ lives, resolvers used by it, checks of the command line and of a composed config."""
from atheria.config.overrides import check_command_line
from atheria.config.resolvers import CONF_DIR, register_resolvers
from atheria.config.validate import check_group_choices, check_runtime, validate

__all__ = ["CONF_DIR", "register_resolvers", "check_command_line", "check_group_choices",
           "check_runtime", "validate"]
