def test_login_and_home_for_every_role(client_for):
    for role in ("Owner", "Manager", "Employee", "Viewer"):
        client = client_for(role)
        response = client.get("/")
        assert response.status_code == 200, role
        assert "Termine in den nächsten 7 Tagen" in response.get_data(as_text=True)


def test_wrong_password_is_refused(app, world):
    from tests.conftest import csrf_token

    client = app.test_client()
    token = csrf_token(client, "/login/")
    response = client.post("/login/", data={"username": "owner", "password": "falsch", "csrf_token": token})
    assert client.get("/customerview/list/").status_code == 302
    assert response.status_code in (200, 302)


def test_home_card_links_to_exactly_the_bookings_it_counts(app, client_for, world):
    """The "next 7 days" number and the list behind its link use the same window and rows."""
    import html as html_lib
    import re
    from datetime import datetime, timedelta, timezone

    from tests.conftest import temporary_booking

    soon = datetime.now(timezone.utc).replace(second=0, microsecond=0) + timedelta(days=2, hours=1)
    with temporary_booking(app, soon, comment="Bald"):
        for role in ("Owner", "Employee"):
            client = client_for(role)
            page = client.get("/").get_data(as_text=True)
            number = int(re.search(r'id="count-bookings">(\d+)<', page).group(1))
            link = html_lib.unescape(re.search(r'id="link-bookings" href="([^"]+)"', page).group(1))
            assert "_flt_1_start_at=" in link and "_flt_2_start_at=" in link
            listing = client.get(link)
            assert listing.status_code == 200
            shown = int(re.search(r"Anzahl Datensätze:</strong>\s*(\d+)", listing.get_data(as_text=True)).group(1))
            assert number == shown >= 1, role
