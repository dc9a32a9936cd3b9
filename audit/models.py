"""The audit trail: append-only, in every schema (a hospital's events in its own, the platform's in public)."""

from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """Who did what, to what, when, from where. The database refuses UPDATE and DELETE (migration 0001)."""

    class Action(models.TextChoices):
        LOGIN_SUCCEEDED = "login_succeeded", "Login succeeded"
        LOGIN_FAILED = "login_failed", "Login failed"
        LOGOUT = "logout", "Logout"
        REFRESH_TOKEN_REUSED = "refresh_token_reused", "Rotated refresh token presented again"
        SESSIONS_ENDED = "sessions_ended", "Sessions ended"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        PASSWORD_RESET = "password_reset", "Password reset"
        INVITATION_SENT = "invitation_sent", "Invitation sent"
        INVITATION_ACCEPTED = "invitation_accepted", "Invitation accepted"
        INVITATION_REVOKED = "invitation_revoked", "Invitation revoked"
        STAFF_ROLE_CHANGED = "staff_role_changed", "Staff role changed"
        PERMISSION_GRANTED = "permission_granted", "Access granted"
        PERMISSION_REVOKED = "permission_revoked", "Access revoked"
        PATIENT_VIEWED = "patient_viewed", "Patient record viewed"
        PATIENT_CHANGED = "patient_changed", "Patient record changed"
        NOTES_VIEWED = "notes_viewed", "Clinical notes viewed"
        NOTE_ADDED = "note_added", "Clinical note added"
        CARE_TEAM_VIEWED = "care_team_viewed", "Care team viewed"
        BREAK_GLASS_OPENED = "break_glass_opened", "Emergency access opened"
        BREAK_GLASS_ENDED = "break_glass_ended", "Emergency access ended"
        BREAK_GLASS_REVIEWED = "break_glass_reviewed", "Emergency access reviewed"
        ACCESS_POLICY_CHANGED = "access_policy_changed", "Access policy changed"
        ACCESS_LOG_VIEWED = "access_log_viewed", "Patient access log viewed"
        MFA_ENROLLED = "mfa_enrolled", "Second factor enrolled"
        MFA_REMOVED = "mfa_removed", "Second factor removed"
        MFA_FAILED = "mfa_failed", "Wrong second-factor code"
        MFA_RECOVERY_CODE_USED = "mfa_recovery_code_used", "Recovery code used"
        MFA_RECOVERY_CODES_GENERATED = "mfa_recovery_codes_generated", "Recovery codes regenerated"
        MFA_RESET = "mfa_reset", "Second factors reset by an admin"
        MFA_POLICY_CHANGED = "mfa_policy_changed", "MFA policy changed"
        HOSPITAL_ONBOARDED = "hospital_onboarded", "Hospital onboarded"
        HOSPITAL_SUSPENDED = "hospital_suspended", "Hospital suspended"
        HOSPITAL_REACTIVATED = "hospital_reactivated", "Hospital reactivated"
        SSO_CONFIGURED = "sso_configured", "Single sign-on configured"
        SSO_IDENTITY_LINKED = "sso_identity_linked", "IdP identity linked to an account"
        SSO_SIGN_IN_REFUSED = "sso_sign_in_refused", "Single sign-on refused"

    created = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
    # Plain values, no foreign keys: the trail outlives what it names.
    actor_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor_email = models.CharField(max_length=254, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            # One record's history, newest first (a patient's access log): an index range in the log's order,
            # so a page and its count read only that record's events, however long the trail.
            models.Index(fields=["target_type", "target_id", "-created", "-id"], name="audit_target_history"),
        ]

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.action} by {self.actor_email or '-'}"
