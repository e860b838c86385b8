"""Use cases: one method per action, each resolving, authorizing, guarding, calling the provider and
persisting in one unit of work. The only caller of providers and repositories."""
