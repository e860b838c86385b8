"""Words of the Instances page (F4.1, F4.3)."""

from __future__ import annotations

TERMS: dict[str, tuple[str, str]] = {
    "inst.kind": ("Type", "类型"),
    "inst.kind.openkms_software": ("Software Key Management", "软件密钥管理"),
    "inst.kind.openkms_hardware": ("Hardware Key Management", "硬件密钥管理"),
    "inst.health": ("Health", "健康状态"),
    "inst.health.Healthy": ("Available", "可用"),
    "inst.health.Unavailable": ("Unavailable", "不可用"),
    "inst.health.checked": ("checked", "检查于"),
    "inst.kind.openkms_external": ("External Key Management", "外部密钥管理"),
    "inst.keys": ("Keys (in use / quota)", "密钥数量（已用/配额）"),
    "inst.quota": ("Access Management Quota (used / total)", "访问管理配额（已用 / 总量）"),
    "inst.cooling": ("Being released", "释放中"),
    "inst.shared_with": ("Shared With", "共享给"),
    "inst.not_shared": ("Not shared with any account.", "未共享给任何账号。"),
    "inst.account_id": ("Account ID", "账号ID"),
    "inst.share": ("Share", "共享"),
    "inst.unshare": ("Stop Sharing", "取消共享"),
    "inst.owner": ("Owner Account", "所有者账号"),
    "inst.shared_with_me": ("Instances Shared with This Account", "共享给本账号的实例"),
    "inst.none_shared_with_me": ("No instance is shared with this account.", "没有共享给本账号的实例。"),
    "notice.instance_shared": ("The instance is shared.", "实例已共享。"),
    "notice.instance_unshared": (
        "The instance is no longer shared with that account.",
        "已取消对该账号的共享。",
    ),
}
