//! The fixed vocabulary events are drawn from: platforms, apps, locales,
//! event names, pages, referrers and plans.

pub(super) struct Platform {
    pub(super) os: &'static str,
    pub(super) os_versions: &'static [&'static str],
    pub(super) manufacturer: &'static str,
    pub(super) models: &'static [&'static str],
    pub(super) user_agent: &'static str,
}

pub(super) const PLATFORMS: &[Platform] = &[
    Platform {
        os: "iOS",
        os_versions: &["16.7.5", "17.2.1", "17.3.1"],
        manufacturer: "Apple",
        models: &["iPhone14,2", "iPhone15,3", "iPad13,1"],
        user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    },
    Platform {
        os: "Android",
        os_versions: &["13", "14"],
        manufacturer: "Google",
        models: &["Pixel 7", "Pixel 8 Pro", "Pixel 6a"],
        user_agent: "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.6167.143 Mobile Safari/537.36",
    },
    Platform {
        os: "Mac OS X",
        os_versions: &["13.6.4", "14.3.1"],
        manufacturer: "Apple",
        models: &["MacBookPro18,1", "Mac14,2"],
        user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
    },
    Platform {
        os: "Windows",
        os_versions: &["10", "11"],
        manufacturer: "Dell Inc.",
        models: &["XPS 13 9310", "Latitude 5420"],
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
    },
];

/// `(name, version, build)`.
pub(super) const APPS: &[(&str, &str, &str)] = &[
    ("Acme Shop", "4.2.0", "4200"),
    ("Acme Shop", "4.2.1", "4213"),
    ("Acme Shop", "4.3.0", "4301"),
    ("Acme Docs", "2.0.3", "2003"),
];

pub(super) const LIBRARY_VERSIONS: &[&str] = &["2.2.3", "2.3.0", "2.3.2"];

/// `(locale, timezone, currency)`.
pub(super) const LOCALES: &[(&str, &str, &str)] = &[
    ("en-US", "America/New_York", "USD"),
    ("en-US", "America/Los_Angeles", "USD"),
    ("en-GB", "Europe/London", "GBP"),
    ("de-DE", "Europe/Berlin", "EUR"),
    ("fr-FR", "Europe/Paris", "EUR"),
    ("es-ES", "Europe/Madrid", "EUR"),
    ("ja-JP", "Asia/Tokyo", "JPY"),
    ("pt-BR", "America/Sao_Paulo", "BRL"),
];

/// Track event names, repeated to weight them.
pub(super) const TRACK_EVENTS: &[&str] = &[
    "Product Viewed",
    "Product Viewed",
    "Product Viewed",
    "Product Clicked",
    "Product Clicked",
    "Product Added",
    "Order Completed",
    "Checkout Started",
    "Application Opened",
    "Document Opened",
    "Debug Ping",
    "Page Viewed",
    "Signed In",
];

pub(super) struct Page {
    pub(super) name: &'static str,
    pub(super) path: &'static str,
    pub(super) title: &'static str,
    /// The path is followed by a product id.
    pub(super) with_product: bool,
}

pub(super) const fn page(name: &'static str, path: &'static str, title: &'static str) -> Page {
    Page {
        name,
        path,
        title,
        with_product: false,
    }
}

pub(super) const PRODUCT_PAGE: Page = Page {
    name: "Product",
    path: "/products/",
    title: "Product details - Acme",
    with_product: true,
};

/// Pages, repeated to weight them.
pub(super) const PAGES: &[Page] = &[
    page("Home", "/", "Acme - Everything for your desk"),
    page("Products", "/products", "All products - Acme"),
    PRODUCT_PAGE,
    PRODUCT_PAGE,
    page("Cart", "/cart", "Your cart - Acme"),
    page("Checkout", "/checkout", "Checkout - Acme"),
    page(
        "Docs",
        "/docs/getting-started",
        "Getting started - Acme Docs",
    ),
    page("Pricing", "/pricing", "Pricing - Acme"),
];

pub(super) const REFERRERS: &[&str] = &[
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://news.ycombinator.com/",
    "https://shop.acme.example/",
    "https://t.co/",
];

pub(super) const PLANS: &[&str] = &["free", "free", "pro", "team", "enterprise"];
