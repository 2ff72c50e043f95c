"""Vendor clients (their emulators are the top-level `sandbox` package, which nothing here imports).

    handlers.registry    Vendors(settings, http).perform(vendor, operation, event, idempotency_key=, timeout=),
                         is_configured(vendor, operation), build_http_client(settings)
    handlers.base        the shared client: headers, time budget, `classify` (HTTP outcome -> error taxonomy),
                         `parse_retry_after`, secret scrubbing
    handlers.segmetrics, .salesmachine, .personaclick, .infinity
                         one client class per vendor, a method per operation, pure payload builders
"""
