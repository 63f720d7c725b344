def test_it_answers_root(api):
    response = api.get("/")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_it_logs_in_owner(api, owner):
    response = api.post("/api/auth/login", {"email": owner.email, "password": "correct-horse-battery"})
    assert response.status_code == 200, response.content
    assert response.json()["user"]["role"] == "owner"
