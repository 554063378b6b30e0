from django import template

from inspections.pages.access import navigation

register = template.Library()


@register.simple_tag
def nav_for(user) -> dict[str, bool]:
    return navigation(user)


@register.filter
def percent(value, digits: int = 1) -> str:
    try:
        return f"{100 * float(value):.{int(digits)}f}%"
    except (TypeError, ValueError):
        return "–"


@register.filter
def reason_title(code: str) -> str:
    """A review-reason code as its badge shows it."""
    from inspections.review.reasons import REASON_TITLES

    return REASON_TITLES.get(code, code)
