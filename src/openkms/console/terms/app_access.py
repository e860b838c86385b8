"""Words of the Application Access page (the instance API's access points, issue 18), in the wording
of Alibaba's KMS console (应用接入)."""

from __future__ import annotations

TERMS: dict[str, tuple[str, str]] = {
    "nav.app_access": ("Application Access", "应用接入"),
    "aap.intro": (
        "Applications reach keys and secrets through the instance API with a client key of an application "
        "access point (alibabacloud-dkms-gcs, the KMS SDK's TransferClient; docs/instance-api.md).",
        "应用通过应用接入点的 Client Key 经实例 API 使用密钥和凭据（alibabacloud-dkms-gcs、KMS SDK 的 "
        "TransferClient；见 docs/instance-api.md）。",
    ),
    "aap.name": ("Application Access Point", "应用接入点"),
    "aap.policies": ("Permission Policies", "权限策略"),
    "aap.client_keys": ("Client Keys", "Client Key 列表"),
    "aap.no_client_keys": ("No client key.", "暂无 Client Key。"),
    "aap.valid_until": ("valid until", "有效期至"),
    "aap.none": ("No application access point.", "暂无应用接入点。"),
    "aap.create": ("Create Application Access Point", "创建应用接入点"),
    "aap.create_download": (
        "Create and Download the Client Key File",
        "创建并下载 Client Key 文件",
    ),
    "aap.permissions": ("Permissions", "权限"),
    "aap.key_user": ("Use keys (CryptoServiceKeyUser)", "使用密钥（CryptoServiceKeyUser）"),
    "aap.secret_user": ("Read secrets (CryptoServiceSecretUser)", "读取凭据（CryptoServiceSecretUser）"),
    "aap.resources": ("Resources", "资源"),
    "aap.resources_hint": (
        "key/<KeyId>, key/*, secret/<name>, secret/*, comma-separated.",
        "key/<KeyId>、key/*、secret/<凭据名称>、secret/*，以逗号分隔。",
    ),
    "aap.sources": ("Allowed Source Addresses", "允许的来源地址"),
    "aap.sources_hint": (
        "IP addresses and CIDR blocks, comma-separated (the network control rule).",
        "IP 地址和 CIDR 网段，以逗号分隔（网络控制规则）。",
    ),
    "aap.password": ("Client Key Password", "Client Key 密码"),
    "aap.password_again": ("Password Again", "确认密码"),
    "aap.password_hint": (
        "8 to 64 characters of at least two kinds of letters, digits and ~!@#$%^&*?_-. OpenKMS does not "
        "keep it: the downloaded file opens only with it.",
        "8～64 个字符，至少包含字母、数字和 ~!@#$%^&*?_- 中的两种。"
        "OpenKMS 不保存密码：下载的文件只能用它打开。",
    ),
    "aap.password_mismatch": (
        "The two passwords differ; nothing was created.",
        "两次输入的密码不一致，未创建任何内容。",
    ),
    "aap.new_client_key": ("Create Client Key", "创建 Client Key"),
    "aap.download": ("Create and Download", "创建并下载"),
    "aap.delete_client_key": ("Delete", "删除"),
    "aap.delete": ("Delete", "删除"),
    "aap.delete_confirm": (
        "Delete this access point and its client keys? Applications using them stop working.",
        "删除该应用接入点及其 Client Key？使用它们的应用将无法访问。",
    ),
    "notice.aap.deleted": ("The application access point is deleted.", "应用接入点已删除。"),
    "notice.aap.client_key_deleted": ("The client key is deleted.", "Client Key 已删除。"),
}
