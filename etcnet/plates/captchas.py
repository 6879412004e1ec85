"""The image captcha (验证码) of the public site: registration and 「验证」 (seed 004).

django-simple-captcha keeps each challenge in its table (``CaptchaStore``) and
draws its image at ``/captcha/image/<key>/``; a page shows the image and sends
back the key with the answer. A challenge is good for one try, right or wrong,
so a script cannot try answers against one image. With the library's test mode
(``CAPTCHA_TEST_MODE``, tests only) the answer "PASSED" is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from captcha.conf import settings as captcha_settings
from captcha.helpers import captcha_image_url
from captcha.models import CaptchaStore

from etcnet.core.errors import FieldIssue, InvalidInput
from etcnet.core.validators import gettext_noop


@dataclass(frozen=True)
class Challenge:
    key: str
    image_url: str

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "image_url": self.image_url}


def new_challenge() -> Challenge:
    key = CaptchaStore.generate_key()
    return Challenge(key, captcha_image_url(key))


def check(key: str, answer: str) -> None:
    """Raises ``InvalidInput`` naming the field ``captcha`` unless ``answer``
    is the challenge's (case does not matter). Uses the challenge up."""
    key = (key or "").strip().lower()
    answer = (answer or "").strip().lower()
    if not answer:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "captcha", "required", gettext_noop("Enter the characters in the image.")
                )
            ]
        )
    CaptchaStore.remove_expired()
    store = CaptchaStore.objects.filter(hashkey=key).first()
    if store is not None:
        store.delete()
    if captcha_settings.CAPTCHA_TEST_MODE and answer == "passed":
        return
    if store is None or store.response != answer:
        raise InvalidInput(
            issues=[
                FieldIssue(
                    "captcha",
                    "wrong",
                    gettext_noop("The characters do not match the image; enter the new one."),
                )
            ]
        )
