"""The KMS instance API (dkms-gcs-0.2): protobuf over HTTPS, authenticated by an application access
point's client key; another front door on the one core (`dispatch.py`)."""
