"""Words of the Audit page (the account's audit records and the log's verification)."""

from __future__ import annotations

TERMS: dict[str, tuple[str, str]] = {
    "audit.verification": ("Log Verification", "日志校验"),
    "audit.verified_ok": ("The audit log is intact.", "审计日志完整。"),
    "audit.verified_broken": ("The audit log is broken.", "审计日志已损坏。"),
    "audit.not_verified": ("The audit log was not verified here.", "此处未校验审计日志。"),
    "audit.broken_where": (
        "The server's operator sees where with openkms audit verify.",
        "服务器管理员可通过 openkms audit verify 查看损坏位置。",
    ),
    "audit.proves": (
        "Verified as by openkms audit verify: no record was edited, inserted, deleted or reordered, "
        "and no file was cut short or removed.",
        "与 openkms audit verify 相同的校验：没有记录被修改、插入、删除或重排，没有文件被截断或删除。",
    ),
    "audit.checked_at": ("Checked at", "校验时间"),
    "audit.verify_now": ("Verify Now", "立即校验"),
    "audit.time": ("Time", "时间"),
    "audit.action": ("Action", "操作"),
    "audit.principal": ("Principal", "操作者"),
    "audit.resource": ("Resource", "资源"),
    "audit.result": ("Result", "结果"),
    "audit.result.any": ("All", "全部"),
    "audit.result.Success": ("Success", "成功"),
    "audit.result.Failure": ("Failure", "失败"),
    "audit.door": ("Source", "来源"),
    "audit.source": ("Source IP", "源IP"),
    "audit.none": ("No record matches.", "没有匹配的记录。"),
    "audit.newer": ("Newer", "较新"),
    "audit.older": ("Older", "较旧"),
    "audit.bounded": (
        "Only the newest 100,000 records of the log are searched here.",
        "此处仅搜索日志中最新的100,000条记录。",
    ),
    "notice.audit_verified": ("The audit log was verified.", "审计日志已校验。"),
}
