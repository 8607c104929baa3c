//! Job title → role, sub-role and seniority (providers.md §5.2).
//!
//! The title is lowercased, dots dropped (`Sr.` → `sr`, `V.P.` → `vp`), punctuation turned into
//! spaces (`&` kept), and abbreviations expanded: `sr` → senior, `jr` → junior, `mgr` → manager,
//! `dir` → director, `eng`/`engr` → engineer, `dev` → developer, `vice president` → vp. Then the
//! tables below are tried in order; the first hit wins.
//!
//! **Seniority** (Clearbit's vocabulary; individual contributors get none):
//! - `executive`: chief, c?o (ceo, cto, cfo, coo, cmo, cio, cpo, cro, cso, cxo), founder, owner,
//!   president, vp/svp/evp/avp, partner (not "business/people partner"), managing director,
//!   general manager
//! - `director`: director, head of
//! - `manager`: manager, lead, supervisor; except "account manager", "product manager",
//!   "project manager" and "program manager", which are usually individual contributors and count
//!   only with a senior/group/principal prefix
//!
//! **Role** (Clearbit's 22 values, most specific first): ceo, founder, owner, president,
//! recruiting, human_resources, legal, finance, public_relations, communications, marketing,
//! sales, customer_service, product, information_technology, engineering, research, operations,
//! consulting, education, health_professional, real_estate. When the title matches nothing, the
//! department (Graph/Okta `department`) is tried with the same table.
//!
//! **Sub-role** (our own vocabulary; Clearbit's official list is not public): software_engineer,
//! devops, data_engineering, data_science, security, design, product_management,
//! product_marketing, account_executive, sales_development, account_management, sales_operations,
//! customer_success, support, accounting, fp_and_a, recruiter, talent, counsel, brand_marketing,
//! growth_marketing, content, it_operations.

use regex::Regex;
use std::sync::LazyLock;

/// Role, sub-role and seniority for one title; each may be absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classified {
    pub role: Option<&'static str>,
    pub sub_role: Option<&'static str>,
    pub seniority: Option<&'static str>,
}

type Table = Vec<(&'static str, Regex)>;

fn table(rows: &[(&'static str, &str)]) -> Table {
    rows.iter()
        .map(|(name, pattern)| {
            // The patterns are constants of this file; a typo is caught by the unit tests.
            let re = Regex::new(&format!(r"\b(?:{pattern})\b")).expect("valid role pattern");
            (*name, re)
        })
        .collect()
}

static SENIORITY: LazyLock<Table> = LazyLock::new(|| {
    table(&[
        (
            "executive",
            r"chief|c[etofimprs]o|cxo|founder|co founder|cofounder|owner|president|vp|svp|evp|avp|partner|managing director|general manager",
        ),
        ("director", r"director|head of|head"),
        ("manager", r"manager|lead|supervisor"),
    ])
});

static ROLES: LazyLock<Table> = LazyLock::new(|| {
    table(&[
        ("ceo", r"ceo|chief executive"),
        ("founder", r"founder|co founder|cofounder"),
        ("owner", r"owner"),
        ("president", r"president"),
        (
            "recruiting",
            r"recruit\w*|talent acquisition|sourcer|sourcing",
        ),
        (
            "human_resources",
            r"hr|hrbp|human resources|people ops|people operations|people partner|chief people officer|payroll",
        ),
        (
            "legal",
            r"counsel|attorney|lawyer|paralegal|legal|compliance",
        ),
        (
            "finance",
            r"finance|financial|accountant|accounting|controller|cfo|treasury|fp&a|fpa|bookkeep\w*|audit\w*|tax",
        ),
        ("public_relations", r"public relations|pr|press"),
        ("communications", r"communications?|comms"),
        (
            "marketing",
            r"marketing|marketer|cmo|growth|seo|sem|brand|content|demand gen\w*|copywriter",
        ),
        (
            "sales",
            r"sales|account executive|ae|bdr|sdr|business development|account manager|chief revenue officer|cro|revenue",
        ),
        (
            "customer_service",
            r"support|customer success|customer service|customer experience|cx|help ?desk|service desk",
        ),
        (
            "product",
            r"product manager|product owner|product management|product|cpo",
        ),
        (
            "information_technology",
            r"it|sysadmin|systems? administrator|network|cio|chief information officer|information technology",
        ),
        (
            "engineering",
            r"engineer\w*|developer|software|devops|sre|architect|cto|chief technology officer|programmer|data scientist|technical|qa",
        ),
        ("research", r"research\w*|scientist|r&d"),
        (
            "operations",
            r"operations|ops|coo|chief operating officer|logistics|supply chain|procurement|facilities",
        ),
        ("consulting", r"consultant|consulting|advisory|advisor"),
        (
            "education",
            r"teacher|professor|lecturer|instructor|tutor|educator",
        ),
        (
            "health_professional",
            r"nurse|physician|doctor|md|pharmacist|therapist|dentist|surgeon|clinician|medical",
        ),
        ("real_estate", r"realtor|real estate|broker|leasing"),
    ])
});

static SUB_ROLES: LazyLock<Table> = LazyLock::new(|| {
    table(&[
        ("product_marketing", r"product marketing"),
        (
            "sales_operations",
            r"sales operations|revenue operations|revops|sales ops",
        ),
        ("account_executive", r"account executive|ae"),
        (
            "sales_development",
            r"sdr|bdr|sales development|business development",
        ),
        ("account_management", r"account manager|account management"),
        ("customer_success", r"customer success"),
        (
            "support",
            r"support|help ?desk|service desk|customer service",
        ),
        ("recruiter", r"recruit\w*|sourcer|talent acquisition"),
        (
            "talent",
            r"talent|people partner|business partner|hrbp|people operations|people ops",
        ),
        ("counsel", r"counsel|attorney|lawyer|paralegal|legal"),
        ("fp_and_a", r"fp&a|fpa|financial planning|financial analyst"),
        (
            "accounting",
            r"accountant|accounting|bookkeep\w*|controller",
        ),
        ("brand_marketing", r"brand"),
        (
            "growth_marketing",
            r"growth|demand gen\w*|performance marketing|seo|sem",
        ),
        ("content", r"content|copywriter|editor|writer"),
        (
            "product_management",
            r"product manager|product owner|product management|cpo",
        ),
        (
            "security",
            r"security|infosec|cybersecurity|penetration|pentest\w*",
        ),
        (
            "devops",
            r"devops|sre|site reliability|platform engineer\w*|infrastructure|cloud engineer",
        ),
        ("data_engineering", r"data engineer\w*"),
        (
            "data_science",
            r"data scientist|data science|machine learning|ml|ai|data analyst|analytics",
        ),
        ("design", r"designer|design|ux|ui"),
        (
            "software_engineer",
            r"software|developer|programmer|frontend|front end|backend|back end|full ?stack|ios|android|engineer\w*",
        ),
        (
            "it_operations",
            r"it|sysadmin|systems? administrator|network|information technology",
        ),
    ])
});

/// Titles that say "manager" but are usually individual contributors.
static IC_MANAGER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:account|product|project|program) manager\b").expect("valid pattern")
});
static SENIOR_PREFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:senior|group|principal|lead)\b").expect("valid pattern"));
static NOT_EXEC_PARTNER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:business|people) partner\b").expect("valid pattern"));

/// Lowercases, strips punctuation and expands the usual abbreviations.
fn normalize(title: &str) -> String {
    let lowered: String = title
        .chars()
        .take(256)
        .filter(|c| *c != '.')
        .map(|c| {
            let c = c.to_lowercase().next().unwrap_or(c);
            if c.is_alphanumeric() || c == '&' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let words: Vec<&str> = lowered
        .split_whitespace()
        .map(|w| match w {
            "sr" => "senior",
            "jr" => "junior",
            "mgr" => "manager",
            "dir" => "director",
            "eng" | "engr" => "engineer",
            "dev" => "developer",
            w => w,
        })
        .collect();
    words.join(" ").replace("vice president", "vp")
}

fn first_hit(table: &Table, text: &str) -> Option<&'static str> {
    table
        .iter()
        .find(|(_, re)| re.is_match(text))
        .map(|(n, _)| *n)
}

fn seniority(t: &str) -> Option<&'static str> {
    let t = NOT_EXEC_PARTNER.replace_all(t, " ");
    let hit = first_hit(&SENIORITY, &t)?;
    if hit == "manager" && IC_MANAGER.is_match(&t) {
        // Only "manager" via an IC title: count it only with a senior-style prefix.
        let without = IC_MANAGER.replace_all(&t, " ");
        let other_manager = first_hit(&SENIORITY, &without).is_some();
        return (other_manager || SENIOR_PREFIX.is_match(&t)).then_some("manager");
    }
    Some(hit)
}

/// Classifies a title, falling back to the department for role and sub-role.
pub fn classify(title: Option<&str>, department: Option<&str>) -> Classified {
    let t = title.map(normalize).unwrap_or_default();
    let d = department.map(normalize).unwrap_or_default();
    let role = first_hit(&ROLES, &t).or_else(|| first_hit(&ROLES, &d));
    let sub_role = first_hit(&SUB_ROLES, &t).or_else(|| first_hit(&SUB_ROLES, &d));
    Classified {
        role,
        sub_role,
        seniority: seniority(&t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(title: &str) -> (Option<&str>, Option<&str>, Option<&str>) {
        let r = classify(Some(title), None);
        (r.role, r.sub_role, r.seniority)
    }

    #[test]
    fn titles_are_classified_by_the_documented_table() {
        let cases = [
            (
                "Chief Executive Officer",
                (Some("ceo"), None, Some("executive")),
            ),
            ("Founder & CEO", (Some("ceo"), None, Some("executive"))),
            ("CTO", (Some("engineering"), None, Some("executive"))),
            (
                "VP, Sales Operations",
                (Some("sales"), Some("sales_operations"), Some("executive")),
            ),
            (
                "Vice President of Marketing",
                (Some("marketing"), None, Some("executive")),
            ),
            ("President", (Some("president"), None, Some("executive"))),
            (
                "Director of Product Marketing",
                (
                    Some("marketing"),
                    Some("product_marketing"),
                    Some("director"),
                ),
            ),
            (
                "Head of Growth",
                (
                    Some("marketing"),
                    Some("growth_marketing"),
                    Some("director"),
                ),
            ),
            (
                "Sr. Software Engineer",
                (Some("engineering"), Some("software_engineer"), None),
            ),
            (
                "Engineering Manager",
                (
                    Some("engineering"),
                    Some("software_engineer"),
                    Some("manager"),
                ),
            ),
            (
                "Product Manager",
                (Some("product"), Some("product_management"), None),
            ),
            (
                "Senior Product Manager",
                (Some("product"), Some("product_management"), Some("manager")),
            ),
            (
                "Account Manager",
                (Some("sales"), Some("account_management"), None),
            ),
            (
                "Account Executive",
                (Some("sales"), Some("account_executive"), None),
            ),
            ("SDR", (Some("sales"), Some("sales_development"), None)),
            (
                "Customer Success Manager",
                (
                    Some("customer_service"),
                    Some("customer_success"),
                    Some("manager"),
                ),
            ),
            (
                "HR Business Partner",
                (Some("human_resources"), Some("talent"), None),
            ),
            (
                "Technical Recruiter",
                (Some("recruiting"), Some("recruiter"), None),
            ),
            ("General Counsel", (Some("legal"), Some("counsel"), None)),
            (
                "Staff Accountant",
                (Some("finance"), Some("accounting"), None),
            ),
            (
                "Site Reliability Engineer",
                (Some("engineering"), Some("devops"), None),
            ),
            (
                "Data Scientist",
                (Some("engineering"), Some("data_science"), None),
            ),
            ("UX Designer", (None, Some("design"), None)),
            (
                "IT Support Specialist",
                (Some("customer_service"), Some("support"), None),
            ),
            (
                "Registered Nurse",
                (Some("health_professional"), None, None),
            ),
            ("Professor of History", (Some("education"), None, None)),
            ("Managing Partner", (None, None, Some("executive"))),
            ("Team Lead", (None, None, Some("manager"))),
            ("Astronaut", (None, None, None)),
            ("", (None, None, None)),
        ];
        for (title, want) in cases {
            assert_eq!(c(title), want, "title {title:?}");
        }
    }

    #[test]
    fn department_is_the_fallback_for_role() {
        let r = classify(Some("Specialist"), Some("Marketing"));
        assert_eq!(r.role, Some("marketing"));
        assert_eq!(r.seniority, None);
        let r = classify(None, Some("Revenue"));
        assert_eq!(r.role, Some("sales"));
    }
}
