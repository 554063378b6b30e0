import pytest


@pytest.mark.django_db
def test_admin_index_names_defect_classes_in_plain_english(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert "Defect classes" in page and "Defect classs" not in page
