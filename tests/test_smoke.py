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
