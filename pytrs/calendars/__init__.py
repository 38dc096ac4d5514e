"""Business calendars: working hours per weekday in a time zone, minus holidays.

Place in the flow: pure working-time arithmetic for the escalation index and the scheduler
(deadlines from budgets of working time), plus the ``[[calendars]]`` config check. Instants are
epoch seconds.
"""

from pytrs.calendars.definition import (
    calendar_from_definition,
    calendar_problems,
    definition_from_config,
)
from pytrs.calendars.working_time import CalendarError, WorkingCalendar, always

__all__ = [
    "CalendarError",
    "WorkingCalendar",
    "always",
    "calendar_from_definition",
    "calendar_problems",
    "definition_from_config",
]
