from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, reverse_lazy

from inspections.access.pages import logins, people, tokens
from steelqc.views import favicon, healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
    path("accounts/lockouts/", logins.login_lockout_list, name="login-lockouts"),
    path("accounts/lockouts/unlock/", logins.login_lockout_unlock, name="login-lockout-unlock"),
    path("accounts/api-tokens/", tokens.api_token_page, name="api-tokens"),
    path("accounts/api-tokens/<int:token_id>/revoke/", tokens.api_token_revoke_page, name="api-token-revoke"),
    path("accounts/people/", people.people_page, name="people"),
    path("accounts/people/<int:person_id>/role/", people.person_role_page, name="person-role"),
    path("accounts/people/<int:person_id>/active/", people.person_active_page, name="person-active"),
    path("accounts/people/<int:person_id>/password-link/", people.person_password_link_page,
         name="person-password-link"),
    # Where a password link from the People page leads (Django's reset token; nothing is mailed).
    path("accounts/password/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(
        success_url=reverse_lazy("password-reset-complete")), name="password-reset-confirm"),
    path("accounts/password/done/", auth_views.PasswordResetCompleteView.as_view(), name="password-reset-complete"),
    path("", include("inspections.registry.urls")),
    path("", include("inspections.urls")),
]
# A refused page shows the site's layout and says which role it needs (inspections.pages.access).
handler403 = "inspections.access.pages.errors.permission_denied"

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
