"""The language codes whisper knows, the allow-list (`ASR_LANGUAGES`) and its one check."""

from __future__ import annotations

# Whisper's language codes (the 99 of the multilingual models plus "yue").
WHISPER_LANGUAGES = frozenset(
    [
        "af",
        "am",
        "ar",
        "as",
        "az",
        "ba",
        "be",
        "bg",
        "bn",
        "bo",
        "br",
        "bs",
        "ca",
        "cs",
        "cy",
        "da",
        "de",
        "el",
        "en",
        "es",
        "et",
        "eu",
        "fa",
        "fi",
        "fo",
        "fr",
        "gl",
        "gu",
        "ha",
        "haw",
        "he",
        "hi",
        "hr",
        "ht",
        "hu",
        "hy",
        "id",
        "is",
        "it",
        "ja",
        "jw",
        "ka",
        "kk",
        "km",
        "kn",
        "ko",
        "la",
        "lb",
        "ln",
        "lo",
        "lt",
        "lv",
        "mg",
        "mi",
        "mk",
        "ml",
        "mn",
        "mr",
        "ms",
        "mt",
        "my",
        "ne",
        "nl",
        "nn",
        "no",
        "oc",
        "pa",
        "pl",
        "ps",
        "pt",
        "ro",
        "ru",
        "sa",
        "sd",
        "si",
        "sk",
        "sl",
        "sn",
        "so",
        "sq",
        "sr",
        "su",
        "sv",
        "sw",
        "ta",
        "te",
        "tg",
        "th",
        "tk",
        "tl",
        "tr",
        "tt",
        "uk",
        "ur",
        "uz",
        "vi",
        "yi",
        "yo",
        "zh",
        "yue",
    ]
)


def parse_language_list(value: object) -> list[str]:
    """Accept "pt,en", "pt en" or a list; lower-case; reject codes whisper does not know."""
    if isinstance(value, str):
        items = [part.strip().lower() for part in value.replace(" ", ",").split(",")]
    elif isinstance(value, list | tuple):
        items = [str(part).strip().lower() for part in value]
    else:
        raise ValueError("languages must be a comma-separated string or a list")
    items = [item for item in items if item]
    if not items:
        raise ValueError("at least one language must be allowed")
    unknown = [item for item in items if item not in WHISPER_LANGUAGES]
    if unknown:
        raise ValueError(f"unknown language code(s): {', '.join(unknown)}")
    return list(dict.fromkeys(items))


class LanguageNotAllowed(ValueError):
    """A language outside the deployment's allow-list."""


def check_language(language: str | None, allowed: list[str]) -> str | None:
    """The code to decode in: None (detect) for none, "" or "auto"; else an allowed code."""
    if language is None or language.strip().lower() in ("", "auto"):
        return None
    code = language.strip().lower()
    if code not in allowed:
        raise LanguageNotAllowed(
            f"language {language!r} is not allowed; allowed: {', '.join(allowed)} "
            "(or omit it to detect)"
        )
    return code
