"""Campaign economics: what a contact costs and a conversion earns, and the rules they obey.

The one home of those rules: `CampaignEconomics` refuses values that break them, and
`economics_problems` names every field that breaks one, for a form or an API to show beside
the field. Light on purpose (no learners), so a web process can import it at start-up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CampaignEconomics:
    # Cost of contacting one customer (call time, postage, voucher), in the campaign currency.
    cost_per_contact: float
    # Margin (or value) one conversion earns, before the contact costs; must be above 0.
    value_per_conversion: float
    # Cost paid once when the campaign runs at all (creative, set-up, platform fee).
    fixed_cost: float = 0.0
    # Most the whole campaign may cost, fixed cost included; None = no limit.
    budget: float | None = None

    def __post_init__(self) -> None:
        problems = economics_problems(asdict(self))
        if problems:
            name, problem = next(iter(problems.items()))
            raise ValueError(f"{name} {problem}, got {getattr(self, name)!r}.")

    def campaign_cost(self, contacts: int | np.ndarray) -> Any:
        """Total cost of contacting `contacts` customers (0 when nobody is contacted)."""
        contacts = np.asarray(contacts)
        cost = np.where(contacts > 0, self.fixed_cost + self.cost_per_contact * contacts, 0.0)
        return float(cost) if cost.ndim == 0 else cost

    def affordable_contacts(self, customers: int) -> int:
        """The most contacts the budget pays for, fixed cost included (at most `customers`)."""
        if self.budget is None:
            return customers
        left = self.budget - self.fixed_cost
        if left < 0:
            return 0
        if self.cost_per_contact == 0:
            return customers
        # The small tolerance keeps 0.3 / 0.1 from flooring to 2.
        return min(customers, int(math.floor(left / self.cost_per_contact + 1e-9)))

    def as_dict(self) -> dict:
        return asdict(self)


# The fields in the order of the dataclass, and the value each optional one takes when left out.
ECONOMICS_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(CampaignEconomics))
ECONOMICS_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in fields(CampaignEconomics) if f.default is not MISSING
}


def economics_problems(values: Mapping[str, Any]) -> dict[str, str]:
    """What is wrong with each field of `values`, as the words that follow the field's name
    ("cannot be negative"); empty when they make a `CampaignEconomics`."""
    problems: dict[str, str] = {}
    for name in ECONOMICS_FIELDS:
        value = values.get(name)
        if value is None and name == "budget":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            problems[name] = "must be a number"
        elif not math.isfinite(value):
            problems[name] = "must be a finite number"
        elif value < 0:
            problems[name] = "cannot be negative"
        elif name == "value_per_conversion" and value == 0:
            problems[name] = (
                "must be above 0: a conversion that earns nothing cannot pay for any contact"
            )
    return problems
