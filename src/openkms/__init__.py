"""OpenKMS: a self-hosted Key Management Service speaking the Alibaba Cloud KMS OpenAPI (2016-01-20)."""
