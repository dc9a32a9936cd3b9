"""The seed's user, as its notes write it (a custom manager, email as the username, table "user")."""

from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.db import models


class UserManager(BaseUserManager):
    def create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("Users must have an email address")
        email = self.normalize_email(email)
        user = self.model(email=email, **extra_fields)
        user.set_password(password)
        user.save()
        return user

    def create_superuser(self, email, password, **extra_fields):
        superuser = self.create_user(email=email, password=password)
        superuser.is_staff = True
        superuser.is_superuser = True
        superuser.is_active = True
        superuser.save(using=self._db)
        return superuser


class Hospital(models.Model):
    """The notes point the user at a "Hospital" model they do not show; the least that makes it valid."""

    name = models.CharField(max_length=200)


class User(AbstractUser):
    username = None
    email = models.EmailField("email address", unique=True, null=False, blank=False)
    hospitalID = models.ForeignKey(  # noqa: N815  (the notes' name)
        "Hospital", on_delete=models.CASCADE, blank=True, null=True, db_column="hospitalID"
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = []

    objects = UserManager()

    @property
    def name(self):
        return f"{self.first_name} {self.last_name}"

    def __str__(self):
        return self.email

    class Meta:
        db_table = "user"
