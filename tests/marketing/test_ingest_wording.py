"""The ingest's messages are made in English and said again in the reader's language."""

from django.utils import translation

from marketing.ingest.fields import TARGET_FIELDS
from marketing.ingest.rows import problem_message
from marketing.ingest.wording import NOTHING_IMPORTED, translated, translated_html

FAILED = NOTHING_IMPORTED % {
    "invalid": "2",
    "rows": "1,204",
    "problems": "; ".join(
        [
            problem_message(4, 5, "email", "O'Brien; Row 9 (x", "is not an email address"),
            problem_message(7, 8, "", "", "has 3 fields but the header has 9"),
            "and 1,234 more",
        ]
    ),
}


def test_english_is_the_text_as_it_was_made():
    with translation.override("en"):
        assert translated(FAILED) == FAILED
        assert translated_html("is longer than 100 characters & more") == (
            "is longer than 100 characters &amp; more"
        )


def test_a_failed_import_reads_in_chinese_with_its_values_as_uploaded():
    with translation.override("zh-hans"):
        shown = translated_html(FAILED)
        assert "未导入任何数据" in shown
        assert '“<span translate="no">O&#x27;Brien; Row 9 (x</span>”不是电子邮件地址' in shown
        assert "有 3 个字段，但表头有 9 个" in shown
        assert "另有 1,234 个问题" in shown
        assert "is not" not in translated(FAILED)


def test_nested_product_words_are_translated_and_unknown_texts_kept():
    with translation.override("zh-hans"):
        assert translated("is empty, but Customer ID is required") == "为空，但“客户 ID”是必填项"
        assert translated("repeats the offer ID of row 2 (line 3)") == (
            "与第 2 行（文件第 3 行）的优惠 ID 重复"
        )
        assert translated("Something else <b>") == "Something else <b>"
        assert translated_html("Something else <b>") == "Something else &lt;b&gt;"


def test_field_labels_stay_english_and_show_translated():
    [customer_id] = [spec for spec in TARGET_FIELDS["customers"] if spec.name == "external_id"]
    with translation.override("zh-hans"):
        assert customer_id.label == "Customer ID"
        assert customer_id.display_label == "客户 ID"
