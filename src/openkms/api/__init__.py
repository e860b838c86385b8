"""The Alibaba Cloud KMS RPC adapter: the only place that knows wire names, codes and encodings."""
