from marketing.roles import DATA_STEWARD, MARKETER, can_view_pii, user_roles


def roles(request) -> dict:
    held = user_roles(request.user)
    return {
        "user_roles": sorted(held),
        "is_marketer": MARKETER in held,
        "is_steward": DATA_STEWARD in held,
        "can_view_pii": can_view_pii(request.user),
    }
