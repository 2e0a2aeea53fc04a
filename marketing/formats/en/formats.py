# The one way English pages write a date and a time ("5 Dec 2026, 14:30"), whatever the
# template; other languages keep Django's formats for them (FORMAT_MODULE_PATH).
DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i"
SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y, H:i"
