"""The words of a key's details page and its tabs, in English and Chinese. The guide's own words
(CONSOLE-TERMS.md: tabs, dialogs, CSR fields, association columns) are in `common.py` and reused."""

from __future__ import annotations

TERMS: dict[str, tuple[str, str]] = {
    "kd.title": ("Key Details", "密钥详情"),
    "kd.back": ("Back to Keys", "返回密钥列表"),
    "kd.basic": ("Basic Information", "基本信息"),
    # DescribeKey's KeyMetadata, field by field
    "kd.meta.KeyId": ("Key ID", "密钥ID"),
    "kd.meta.Arn": ("ARN", "密钥ARN"),
    "kd.meta.KeyState": ("Key Status", "密钥状态"),
    "kd.meta.CreationDate": ("Created At", "创建时间"),
    "kd.meta.Creator": ("Creator", "创建者"),
    "kd.meta.KeySpec": ("Key Specifications", "密钥规格"),
    "kd.meta.KeyUsage": ("Key Usage", "密钥用途"),
    "kd.meta.Origin": ("Key Material Source", "密钥材料来源"),
    "kd.meta.ProtectionLevel": ("Protection Level", "保护级别"),
    "kd.meta.DKMSInstanceId": ("Instance ID", "实例ID"),
    "kd.meta.PrimaryKeyVersion": ("Primary Key Version", "主版本"),
    "kd.meta.AutomaticRotation": ("Automatic Rotation", "自动轮转"),
    "kd.meta.RotationInterval": ("Rotation Period", "轮转周期"),
    "kd.meta.LastRotationDate": ("Last Rotation Time", "上次轮转时间"),
    "kd.meta.NextRotationDate": ("Next Rotation Time", "下次轮转时间"),
    "kd.meta.DeleteDate": ("Scheduled Deletion Time", "计划删除时间"),
    "kd.meta.MaterialExpireTime": ("Key Material Expiration Time", "密钥材料过期时间"),
    "kd.meta.DeletionProtection": ("Deletion Protection", "删除保护"),
    "kd.meta.DeletionProtectionDescription": ("Deletion Protection Description", "删除保护描述"),
    "kd.meta.OpenKMSAdditionalKeyUsages": ("Additional Key Usages", "附加密钥用途"),
    "kd.meta.OpenKMSExternalKeyId": ("External Key ID", "外部密钥ID"),
    "kd.meta.Description": ("Description", "描述信息"),
    "kd.value.Enabled": ("Enabled", "已开启"),
    "kd.value.Disabled": ("Disabled", "已关闭"),
    # Rotation is configured but paused: the key is disabled, pending deletion or awaiting material.
    "kd.value.Suspended": ("Suspended", "已暂停"),
    "kd.value.SOFTWARE": ("Software", "软件"),
    "kd.value.HSM": ("Hardware (HSM)", "硬件（HSM）"),
    "kd.value.EXTERNAL": ("External Key Manager", "外部密钥管理设施"),
    "kd.never": ("Never expires", "永不过期"),
    "kd.days": ("days", "天"),
    "kd.none": ("None", "无"),
    "kd.save": ("Save", "保存"),
    "kd.close": ("Close", "关闭"),
    # deletion protection (F5.2)
    "kd.protection_text": (
        "While deletion protection is on, the key cannot be deleted, in the console or through the API. "
        "Turn it off first to schedule its deletion.",
        "开启删除保护后，无法通过控制台或 API 删除该密钥。如需删除，请先关闭删除保护。",
    ),
    "kd.protection_description": ("Description (optional)", "描述（可选）"),
    "kd.protection_off_hint": ("Turning the switch off takes effect at once.", "关闭开关将立即生效。"),
    # lifecycle
    "kd.lifecycle": ("Key Status", "密钥状态"),
    "kd.schedule_warning": (
        "The key goes to Pending Deletion and is deleted when the period ends; until then it cannot "
        "encrypt, decrypt or make data keys, and the deletion can be cancelled. After deletion, data "
        "encrypted under the key, including data keys it produced, can never be decrypted.",
        "密钥将进入待删除状态，并在预删除周期结束后被删除；在此期间密钥不能用于加密、解密或生成数据密钥，"
        "且可以取消删除。删除后，使用该密钥加密的数据（包括其生成的数据密钥）将永远无法解密。",
    ),
    "kd.disable_text": (
        "A disabled key cannot be used for any cryptographic operation until it is enabled again.",
        "禁用后，密钥不能用于任何密码运算，直至重新启用。",
    ),
    "kd.disable_check": ("Before disabling, check who uses the key:", "禁用前，请确认密钥的使用情况："),
    # description, aliases, tags, rotation
    "kd.description_edit": ("Edit Description", "编辑描述信息"),
    "kd.aliases": ("Aliases", "别名"),
    "kd.alias_create": ("Create Alias", "创建别名"),
    "kd.alias_name": ("Alias Name", "别名名称"),
    "kd.alias_update": ("Update Alias", "更新别名"),
    "kd.alias_target": ("Bind to Key ID", "关联的密钥ID"),
    "kd.alias_delete": ("Delete Alias", "删除别名"),
    "kd.alias_delete_text": ("Delete this alias? The key stays.", "确定删除此别名吗？密钥不受影响。"),
    "kd.tag_key": ("Tag Key", "标签键"),
    "kd.tag_value": ("Tag Value", "标签值"),
    "kd.tag_add": ("Add Tag", "添加标签"),
    "kd.tag_remove": ("Remove Tag", "移除标签"),
    "kd.tag_rules": (
        "Up to 128 letters, digits, spaces and / \\ _ - . + = : @; a key may not start with aliyun or acs:; "
        "at most 20 tags.",
        "最多 128 个字符，可包含字母、数字、空格及 / \\ _ - . + = : @；标签键不能以 aliyun 或 acs: 开头；"
        "每个密钥最多 20 个标签。",
    ),
    "kd.rotation_policy": ("Rotation Policy", "轮转策略"),
    "kd.rotation_range": ("7 to 365 days", "7 到 365 天"),
    "kd.rotation_symmetric_only": (
        "Automatic rotation is for symmetric keys only.",
        "仅对称密钥支持自动轮转。",
    ),
    # key policy (F4)
    "kd.policy": ("Key Policy", "密钥策略"),
    "kd.policy_lists_hint": (
        "One principal per line: acs:ram::<uid>:user/<name> or acs:ram::<uid>:role/<name>.",
        "每行一个身份：acs:ram::<uid>:user/<name> 或 acs:ram::<uid>:role/<name>。",
    ),
    "kd.policy_save_lists": ("Save Policy Lists", "保存策略列表"),
    "kd.policy_document": ("Policy Document (JSON)", "策略文档（JSON）"),
    "kd.policy_save_json": ("Save Policy Document", "保存策略文档"),
    "kd.policy_edit_lists": ("Edit Lists", "编辑列表"),
    "kd.policy_edit_json": ("Edit JSON", "编辑 JSON"),
    # Key Versions (F6, F7)
    "kd.version_id": ("Key Version ID", "密钥版本ID"),
    "kd.version_created": ("Created At", "创建时间"),
    "kd.version_primary": ("Primary Version", "主版本"),
    "kd.create_version": ("Create Key Version", "创建密钥版本"),
    "kd.public_key": ("Public Key", "公钥"),
    "kd.csr": ("Certificate Signing Request (CSR)", "证书签名请求（CSR）"),
    "kd.csr_c_hint": ("Two letters, ISO 3166-1 (e.g. CN)", "ISO 3166-1 两位字母代码（例如 CN）"),
    "kd.csr_o_hint": (
        "Exactly as registered, punctuation kept.",
        "与注册名称完全一致，保留标点。",
    ),
    "kd.csr_generate": ("Generate", "生成"),
    # Key Material (F3.5)
    "kd.tab_material": ("Key Material", "密钥材料"),
    "kd.material_intro": (
        "Import key material in three steps: get the wrapping public key and the import token, wrap "
        "the material with the public key, then upload it with the token.",
        "导入密钥材料分三步：获取包装公钥和导入令牌，使用公钥加密密钥材料，然后连同令牌上传。",
    ),
    "kd.material_step_parameters": ("Get Import Parameters", "获取导入密钥材料的参数"),
    "kd.wrapping_algorithm": ("Wrapping Algorithm", "加密算法"),
    "kd.wrapping_key_spec": ("Wrapping Public Key Type", "包装公钥类型"),
    "kd.import_token": ("Import Token", "导入令牌"),
    "kd.token_expires": ("Token Expires At", "令牌过期时间"),
    "kd.wrapping_public_key": ("Wrapping Public Key", "包装公钥"),
    "kd.download_token": ("Download Import Token", "下载导入令牌"),
    "kd.download_wrapping_key": ("Download Wrapping Public Key", "下载包装公钥"),
    "kd.material_step_import": ("Import Key Material", "导入密钥材料"),
    "kd.material_file": ("Wrapped Key Material File", "加密后的密钥材料文件"),
    "kd.material_text": ("Or Wrapped Key Material (Base64)", "或加密后的密钥材料（Base64）"),
    "kd.material_expires": ("Key Material Expiration Date (optional, UTC)", "密钥材料过期日期（可选，UTC）"),
    "kd.material_delete": ("Delete Key Material", "删除密钥材料"),
    "kd.material_delete_text": (
        "The key goes to Pending Import and cannot be used until the same material is imported again.",
        "密钥将进入待导入状态，重新导入相同的密钥材料之前无法使用。",
    ),
    # Key Associations (F8.1)
    "kd.assoc_intro": (
        "Detection lists who called KMS with this key in the last 365 days: each integrated cloud "
        "service, and each other caller. It takes a moment; refresh to see the result.",
        "检测会列出最近 365 天内使用此密钥调用 KMS 的云产品和其他调用者。检测需要一些时间，请刷新查看结果。",
    ),
    "kd.assoc_refresh": ("Refresh", "刷新"),
    "kd.assoc_started": ("Started At", "开始时间"),
    "kd.assoc_finished": ("Finished At", "完成时间"),
    "kd.assoc_caller": ("Caller", "调用者"),
    "kd.assoc_calls": ("Calls", "调用次数"),
    "kd.assoc_none": ("No calls with this key were found.", "未发现使用此密钥的调用。"),
    "kd.assoc_not_started": ("Not detected yet.", "尚未检测。"),
    "kd.assoc_self_built": ("Other caller (not a cloud service)", "其他调用者（非云产品）"),
    "kd.assoc_lookup_service": ("Its resources encrypted with this key", "该云产品中使用此密钥的资源"),
    "kd.assoc_lookup_audit": ("Audit log of this caller", "该调用者的审计日志"),
    "kd.status.NotStarted": ("Not Started", "未检测"),
    "kd.status.Running": ("Detecting", "检测中"),
    "kd.status.Succeeded": ("Succeeded", "检测成功"),
    "kd.status.Failed": ("Failed, retry", "检测失败，请重试"),
    # notices after a change
    "notice.kd_protection_on": ("Deletion protection is on.", "删除保护已开启。"),
    "notice.kd_protection_off": ("Deletion protection is off.", "删除保护已关闭。"),
    "notice.kd_description_saved": ("The description was saved.", "描述信息已保存。"),
    "notice.kd_alias_created": ("The alias was created.", "别名已创建。"),
    "notice.kd_alias_updated": ("The alias was updated.", "别名已更新。"),
    "notice.kd_alias_deleted": ("The alias was deleted.", "别名已删除。"),
    "notice.kd_tag_added": ("The tag was added.", "标签已添加。"),
    "notice.kd_tag_removed": ("The tag was removed.", "标签已移除。"),
    "notice.kd_rotation_saved": ("The rotation policy was saved.", "轮转策略已保存。"),
    "notice.kd_policy_saved": ("The key policy was saved.", "密钥策略已保存。"),
    "notice.kd_enabled": ("The key is enabled.", "密钥已启用。"),
    "notice.kd_disabled": ("The key is disabled.", "密钥已禁用。"),
    "notice.kd_deletion_scheduled": ("The key's deletion is scheduled.", "已计划删除密钥。"),
    "notice.kd_deletion_cancelled": ("The key's deletion is cancelled.", "已取消删除密钥。"),
    "notice.kd_version_created": ("A new key version was created.", "已创建新的密钥版本。"),
    "notice.kd_material_imported": ("The key material was imported.", "密钥材料已导入。"),
    "notice.kd_material_deleted": ("The key material was deleted.", "密钥材料已删除。"),
    "notice.kd_detection_started": ("Association detection started.", "已开始关联检测。"),
}
