//! The ready-made people on the sign-in page, one per kind of account the bridge meets:
//! a Google Workspace engineer, an Okta sales VP with address and phone, a consumer Gmail user,
//! a UK marketing director and a founder.

use super::account::Account;

/// A ready-made person on the sign-in page. Fictional: company domains use the reserved
/// `.example` top-level domain, phone numbers are from ranges kept for drama.
pub struct Persona {
    pub id: &'static str,
    /// One line on the sign-in page: what kind of account this imitates.
    pub summary: &'static str,
    pub given_name: &'static str,
    pub family_name: &'static str,
    pub email: &'static str,
    pub company: Option<&'static str>,
    pub title: Option<&'static str>,
    pub city: Option<&'static str>,
    pub country: Option<&'static str>,
    pub phone: Option<&'static str>,
    pub zoneinfo: &'static str,
    pub locale: &'static str,
}

pub const PERSONAS: &[Persona] = &[
    Persona {
        id: "priya",
        summary: "Engineer at a company on Google Workspace",
        given_name: "Priya",
        family_name: "Raman",
        email: "priya.raman@northwind-robotics.example",
        company: Some("Northwind Robotics"),
        title: Some("Senior Software Engineer"),
        city: Some("San Francisco"),
        country: Some("US"),
        phone: None,
        zoneinfo: "America/Los_Angeles",
        locale: "en-US",
    },
    Persona {
        id: "marcus",
        summary: "Sales VP signing in through his company's Okta, with address and phone",
        given_name: "Marcus",
        family_name: "Okafor",
        email: "marcus.okafor@contoso-health.example",
        company: Some("Contoso Health"),
        title: Some("VP of Sales, North America"),
        city: Some("Chicago"),
        country: Some("US"),
        phone: Some("+1 312 555 0147"),
        zoneinfo: "America/Chicago",
        locale: "en-US",
    },
    Persona {
        id: "jamie",
        summary: "Personal Gmail account: no company, no job title",
        given_name: "Jamie",
        family_name: "Lee",
        email: "jamie.lee.dev.idp@gmail.com",
        company: None,
        title: None,
        city: None,
        country: None,
        phone: None,
        zoneinfo: "America/New_York",
        locale: "en-US",
    },
    Persona {
        id: "eleanor",
        summary: "Marketing director in the United Kingdom",
        given_name: "Eleanor",
        family_name: "Whitfield",
        email: "eleanor.whitfield@fabrikam.example",
        company: Some("Fabrikam UK Ltd"),
        title: Some("Marketing Director"),
        city: Some("London"),
        country: Some("GB"),
        phone: Some("+44 20 7946 0321"),
        zoneinfo: "Europe/London",
        locale: "en-GB",
    },
    Persona {
        id: "sofia",
        summary: "Founder of a small start-up in Spain",
        given_name: "Sofía",
        family_name: "Martínez",
        email: "sofia@lumen-labs.example",
        company: Some("Lumen Labs"),
        title: Some("Founder & CEO"),
        city: Some("Barcelona"),
        country: Some("ES"),
        phone: None,
        zoneinfo: "Europe/Madrid",
        locale: "es-ES",
    },
];

impl Persona {
    pub fn find(id: &str) -> Option<&'static Persona> {
        PERSONAS.iter().find(|p| p.id == id)
    }

    pub fn name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }

    pub fn account(&self) -> Account {
        Account {
            name: Some(self.name()),
            given_name: Some(self.given_name.into()),
            family_name: Some(self.family_name.into()),
            email: self.email.into(),
            company: self.company.map(Into::into),
            title: self.title.map(Into::into),
            city: self.city.map(Into::into),
            country: self.country.map(Into::into),
            phone: self.phone.map(Into::into),
            zoneinfo: Some(self.zoneinfo.into()),
            locale: Some(self.locale.into()),
        }
    }
}
