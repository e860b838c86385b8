"""Words every console page uses: the guide's vocabulary and the shared chrome.

The first part is every row of docs/console-terms.md (the guide's own words, F9), with the ids given
there and the key states as `state.<API value>`; tests/unit/test_console_terms.py holds the two
together. The second part is the console's own chrome: sign-in, top bar, navigation, buttons, columns,
paging, errors, password change and the tag rules' messages. Page-specific words live in the area
modules beside this one (keys.py, key_details.py, ram.py, instances.py, audit.py).
"""

from __future__ import annotations

TERMS: dict[str, tuple[str, str]] = {
    # ---- The guide's vocabulary (docs/console-terms.md) ----
    # Navigation and pages
    "nav.resource": ("Resource", "资源"),
    "nav.keys": ("Keys", "密钥管理"),
    "nav.instances": ("Instances", "实例管理"),
    "top.region": ("Region", "地域"),
    "tab.cmk": ("Customer Master Keys", "用户主密钥"),
    "tab.default": ("Default Keys", "默认密钥"),
    "field.instance": ("Instance ID", "实例ID"),
    "btn.create_key": ("Create Key", "创建密钥"),
    "btn.ok": ("OK", "确定"),
    "btn.cancel": ("Cancel", "取消"),
    "col.actions": ("Actions", "操作"),
    "act.details": ("Details", "详情"),
    "act.enable": ("Enable", "启用"),
    "act.disable": ("Disable", "禁用"),
    "act.schedule_deletion": ("Schedule Key Deletion", "计划删除密钥"),
    "act.cancel_deletion": ("Cancel Key Deletion", "取消删除"),
    # Create Key panel (and enabling the default key)
    "panel.create_key": ("Create Key", "创建密钥"),
    "field.key_type": ("Key Type", "密钥类型"),
    "opt.symmetric": ("Symmetric Key", "对称密钥"),
    "opt.asymmetric": ("Asymmetric Key", "非对称密钥"),
    "field.key_spec": ("Key Specifications", "密钥规格"),
    "field.key_usage": ("Key Usage", "密钥用途"),
    "field.alias": ("Key Alias", "密钥别名"),
    "field.tags": ("Tags", "标签"),
    "field.rotation": ("Automatic Rotation", "自动轮转"),
    "field.rotation_period": ("Rotation Period", "轮转周期"),
    "field.description": ("Description", "描述信息"),
    "section.advanced": ("Advanced Settings", "高级设置"),
    "field.policy": ("Policy Settings", "策略配置"),
    "opt.default_policy": ("Default Policy", "默认策略"),
    "opt.custom_policy": ("Custom Policy", "自定义策略"),
    "field.admins": ("Key Administrators", "管理员"),
    "field.users": ("Key Users", "使用者"),
    "field.other_accounts": ("Users of Other Accounts", "其他账号使用者"),
    "field.origin": ("Key Material Source", "密钥材料来源"),
    "opt.origin_kms": ("Key Management Service", "阿里云KMS"),
    "opt.origin_external": ("External (Import Key Material)", "外部（导入密钥材料）"),
    "check.external_ack": (
        "I understand the implications of using the external key materials",
        "我了解使用外部密钥材料的方法和意义",
    ),
    # Dialogs and the key details page
    "dlg.disable": ("Disable Key", "禁用密钥"),
    "link.associations": ("Key Association Information", "密钥关联信息"),
    "field.deletion_protection": ("Deletion Protection", "删除保护"),
    "dlg.confirm_enable": ("Confirm", "确认开启"),
    "btn.turn_on": ("Enable", "开启"),
    "dlg.schedule_deletion": ("Schedule Key Deletion", "计划删除密钥"),
    "field.pending_window": ("Pre-deletion Period (days)", "预删除周期（天）"),
    "tab.versions": ("Key Versions", "密钥版本"),
    "act.view_public_key": ("View Public Key", "查看公钥"),
    "btn.download": ("Download", "下载"),
    "act.generate_csr": ("Generate CSR", "生成CSR"),
    "btn.download_csr": ("Download CSR File", "下载CSR文件"),
    "field.csr_cn": ("Common Name (CN)", "通用名称（CN）"),
    "field.csr_o": ("Organization", "企业/单位名称"),
    "field.csr_ou": ("Department (OU)", "部门（OU）"),
    "field.csr_s": ("Province (S)", "省份（S）"),
    "field.csr_l": ("City (L)", "城市（L）"),
    "field.csr_c": ("Country or Region (C)", "国家或地区（C）"),
    "field.csr_alg": ("Key Algorithm", "密钥算法"),
    "field.csr_e": ("Email (E)", "邮箱（E）"),
    "tab.associations": ("Key Associations", "密钥关联"),
    "btn.detect": ("Detect Associations", "关联检测"),
    "col.service": ("Cloud Service", "云产品"),
    "col.last_call": ("Last Call Time", "最后一次调用时间"),
    "col.detect_status": ("Detection Status", "检测状态"),
    "col.lookup": ("Where to Look It Up", "云产品查询入口"),
    # Key states as shown
    "state.Enabled": ("Enabled", "启用中"),
    "state.Disabled": ("Disabled", "已禁用"),
    "state.PendingDeletion": ("Pending Deletion", "待删除"),
    "state.PendingImport": ("Pending Import", "待导入"),
    # ---- The console's own chrome ----
    # Sign-in
    "signin.title": ("Sign In", "登录"),
    "signin.name": ("Sign-in Name", "登录名称"),
    "signin.name_hint": (
        "RAM users: <user>@<account ID or alias>. The main account: its account ID.",
        "RAM用户：<用户名>@<账号ID或账号别名>；主账号：账号ID。",
    ),
    "signin.password": ("Password", "密码"),
    "signin.submit": ("Sign In", "登录"),
    "signin.failed": (
        "The sign-in name or password is incorrect, or the name is locked for a while after too many "
        "failed attempts.",
        "登录名称或密码错误，或因登录失败次数过多已被暂时锁定。",
    ),
    "signin.busy": (
        "Too many sign-ins are being checked; try again in a moment.",
        "登录请求过多，请稍后再试。",
    ),
    "signin.expired": ("Your session has ended. Please sign in again.", "会话已结束，请重新登录。"),
    "signin.sealed": (
        "The service is sealed. Sign-in is possible again once it is unsealed.",
        "服务处于密封状态，解封后才能登录。",
    ),
    # Top bar and navigation
    "top.signout": ("Sign Out", "退出登录"),
    "top.language": ("Language", "语言"),
    "top.identity": ("Signed in as", "当前登录"),
    "nav.ram": ("RAM", "访问控制"),
    "nav.users": ("Users", "用户"),
    "nav.roles": ("Roles", "角色"),
    "nav.policies": ("Policies", "权限策略"),
    "nav.audit": ("Audit Log", "审计日志"),
    # Buttons used on every page
    "btn.save": ("Save", "保存"),
    "btn.close": ("Close", "关闭"),
    "btn.search": ("Search", "搜索"),
    "btn.submit": ("Submit", "提交"),
    "btn.copy": ("Copy", "复制"),
    "btn.copied": ("Copied", "已复制"),
    "btn.delete": ("Delete", "删除"),
    "btn.add": ("Add", "添加"),
    "btn.edit": ("Edit", "编辑"),
    "btn.refresh": ("Refresh", "刷新"),
    # Paging
    "paging.label": ("Pages", "分页"),
    "paging.prev": ("Previous", "上一页"),
    "paging.next": ("Next", "下一页"),
    # Errors
    "error.title": ("Error", "错误"),
    "error.access_denied": (
        "You are not allowed to do this. The policy evaluation that refused it:",
        "您没有执行该操作的权限。拒绝该操作的策略评估详情：",
    ),
    "error.not_found": ("The page or resource does not exist.", "页面或资源不存在。"),
    "error.csrf": (
        "The form expired or did not come from this console. Reload the page and try again.",
        "表单已过期或并非来自本控制台，请刷新页面后重试。",
    ),
    # Key table columns
    "col.key_id": ("Key ID", "密钥ID"),
    "col.alias": ("Alias", "别名"),
    "col.key_spec": ("Key Specifications", "密钥规格"),
    "col.key_usage": ("Key Usage", "密钥用途"),
    "col.state": ("Key Status", "密钥状态"),
    "col.protection_level": ("Protection Level", "保护级别"),
    "col.created": ("Created At", "创建时间"),
    "col.description": ("Description", "描述"),
    # Password change (forced after a reset, or chosen)
    "password.change": ("Change Password", "修改密码"),
    "password.old": ("Current Password", "当前密码"),
    "password.new": ("New Password", "新密码"),
    "password.confirm": ("Confirm New Password", "确认新密码"),
    "password.mismatch": ("The two new passwords do not match.", "两次输入的新密码不一致。"),
    "password.reset_required": (
        "You must set a new password before you continue.",
        "您需要先设置新密码才能继续。",
    ),
    "notice.password_changed": ("Your password has been changed.", "密码已修改。"),
    # Tags (F3.2): the labels and the messages of the checks made as you type (console.js)
    "tag.key": ("Tag Key", "标签键"),
    "tag.value": ("Tag Value", "标签值"),
    "tag.add": ("Add Tag", "添加标签"),
    "tag.remove": ("Remove Tag", "删除标签"),
    "tag.msg_required": ("Enter a tag key.", "请输入标签键。"),
    "tag.msg_length": ("At most 128 characters.", "最多128个字符。"),
    "tag.msg_chars": (
        "Use only letters, digits, spaces and / \\ _ - . + = : @",
        "仅支持字母、数字、空格及 / \\ _ - . + = : @",
    ),
    "tag.msg_reserved": ("A tag key must not start with aliyun or acs:", "标签键不能以 aliyun 或 acs: 开头"),
    "tag.msg_too_many": ("At most 20 tags per key.", "每个密钥最多20个标签。"),
}
