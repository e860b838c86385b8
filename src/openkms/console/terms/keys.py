"""Words of the Keys page, its dialogs, the Default Keys tab and the Create Key panel, beyond the
guide's own (terms/common.py). id -> (English, 中文)."""

from __future__ import annotations

TERMS: dict[str, tuple[str, str]] = {
    "keys.kind.software": ("Software Key Management", "软件密钥管理"),
    "keys.kind.hardware": ("Hardware Key Management", "硬件密钥管理"),
    "keys.kind.external": ("External Key Management", "外部密钥管理"),
    "keys.no_instance": (
        "There is no key management instance in this region yet; create keys after an instance exists.",
        "当前地域还没有密钥管理实例，请先创建实例再创建密钥。",
    ),
    "keys.all": ("All", "全部"),
    "keys.additional_usages": ("Additional Key Usages", "附加密钥用途"),
    "keys.additional_usages_hint": (
        "OpenKMS extension: a key pair of a hardware instance may also have these usages.",
        "OpenKMS扩展：硬件密钥管理实例中的密钥对还可以具有这些用途。",
    ),
    "keys.external_key_id": ("External Key ID", "外部密钥ID"),
    "keys.external_key_id_hint": (
        "OpenKMS extension: the id of the key in the external key manager (1-128 letters, digits, - _ .).",
        "OpenKMS扩展：外部密钥管理设施中的密钥ID（1~128个字母、数字、- _ .）。",
    ),
    "keys.switch_instance": ("Switch Instance", "切换实例"),
    "keys.search": ("Key ID or Alias", "密钥ID或别名"),
    "keys.none": ("No keys match.", "没有符合条件的密钥。"),
    "keys.disable_text": (
        "A disabled key cannot be used for any cryptographic operation until it is enabled again. Key:",
        "禁用后，密钥将无法用于任何密码运算，直到重新启用。密钥：",
    ),
    "keys.disable_check": (
        "Before you disable it, check which cloud services use this key:",
        "禁用前，请检查哪些云产品正在使用此密钥：",
    ),
    "keys.deletion_warning": (
        "When the pre-deletion period ends the key is deleted and cannot be recovered. Everything "
        "encrypted under it, including the data keys it generated, can never be decrypted again. Until "
        "then the key cannot encrypt, decrypt or generate data keys, and you can cancel the deletion.",
        "预删除周期结束后，密钥将被删除且无法恢复，使用该密钥加密的所有数据（包括其生成的数据密钥）将永远无法解密。"
        "在此之前，密钥不能用于加密、解密或生成数据密钥，您可以取消删除。",
    ),
    "keys.pending_window_hint": ("7 to 366 days.", "取值范围：7~366天。"),
    "keys.default_cmk": ("Customer Master Key", "用户主密钥"),
    "keys.default_cmk_hint": (
        "The region's default customer master key: at most one per region.",
        "当前地域的默认用户主密钥，每个地域最多一个。",
    ),
    "keys.alias_hint": (
        "Letters, digits, _ - and /; the console adds the alias/ prefix.",
        "由字母、数字、_、- 和 / 组成；控制台会自动添加 alias/ 前缀。",
    ),
    "keys.service_keys": ("Service Keys", "服务密钥"),
    "keys.service_keys_hint": (
        "Created and managed by integrated cloud services (alias/acs/<service>); read-only, never deletable.",
        "由云产品创建和管理（alias/acs/<服务名>），只读，不可删除。",
    ),
    "keys.no_service_keys": ("No service keys in this region.", "当前地域没有服务密钥。"),
    "keys.error_external_ack": (
        "Tick the acknowledgement to use external key material.",
        "使用外部密钥材料前，请勾选确认项。",
    ),
    "keys.error_alias_after_create": (
        "The key was created, but its alias could not be set; set it on the key's details page. Key:",
        "密钥已创建，但别名设置失败，请在密钥详情页设置。密钥：",
    ),
    "keys.tag_hint": (
        "Up to 20 tags; keys and values of at most 128 letters, digits, spaces and / \\ _ - . + = : @; "
        "a key must not start with aliyun or acs:.",
        "最多20个标签；键和值最多128个字符，可包含字母、数字、空格和 / \\ _ - . + = : @；"
        "标签键不能以 aliyun 或 acs: 开头。",
    ),
    "keys.quota_used": ("Access management quota used:", "占用访问管理配额："),
    "keys.days": ("days (7 to 365)", "天（7~365）"),
    "keys.no_principals": ("No RAM users or roles in this account.", "当前账号没有RAM用户或角色。"),
    "keys.other_accounts_hint": (
        "One per line: acs:ram::<uid>:user/<name> or acs:ram::<uid>:role/<name>. Each distinct other "
        "account uses one unit of the instance's access management quota; that account must also grant "
        "the key to them on its side.",
        "每行一个：acs:ram::<uid>:user/<name> 或 acs:ram::<uid>:role/<name>。"
        "每个不同的其他主账号占用实例的一个访问管理配额；对方账号还需在其账号下为其授权。",
    ),
    "notice.keys.enabled": ("The key is enabled.", "密钥已启用。"),
    "notice.keys.disabled": ("The key is disabled.", "密钥已禁用。"),
    "notice.keys.deletion_scheduled": ("The key's deletion is scheduled.", "已计划删除密钥。"),
    "notice.keys.deletion_cancelled": ("The key's deletion is cancelled.", "已取消删除密钥。"),
    "notice.keys.default_enabled": ("The customer master key is enabled.", "用户主密钥已启用。"),
    "notice.keys.created": ("The key is created.", "密钥已创建。"),
}
