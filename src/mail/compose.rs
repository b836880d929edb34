//! The bodies of emails, rendered from templates (`templates/email/`, a text and an HTML part each). The
//! core decides what an email says; this module only lays it out.

use crate::assistance::dossier::{Dossier, Submission};
use crate::assistance::notify::{AdminLetter, Body, DigestItem, DigestLetter, Letters, Notice};
use askama::Template;

#[derive(Template)]
#[template(path = "email/assistance_admin.txt")]
struct AdminText<'a> {
    d: &'a Dossier,
    link: &'a str,
    /// Why an update is sent; `None` for a new request.
    update: Option<&'a str>,
    /// Every submission of the request, when there is more than one.
    submissions: &'a [Submission],
}

#[derive(Template)]
#[template(path = "email/assistance_admin.html")]
struct AdminHtml<'a> {
    d: &'a Dossier,
    link: &'a str,
    update: Option<&'a str>,
    submissions: &'a [Submission],
}

#[derive(Template)]
#[template(path = "email/assistance_digest.txt")]
struct DigestText<'a> {
    count: usize,
    items: &'a [DigestItem],
    unlisted: usize,
    individual: u32,
    minutes: u32,
    queue: &'a str,
    console: &'a str,
}

#[derive(Template)]
#[template(path = "email/assistance_digest.html")]
struct DigestHtml<'a> {
    count: usize,
    items: &'a [DigestItem],
    unlisted: usize,
    individual: u32,
    minutes: u32,
    queue: &'a str,
    console: &'a str,
}

#[derive(Template)]
#[template(path = "email/notice.txt")]
struct NoticeText<'a> {
    n: &'a Notice<'a>,
}

#[derive(Template)]
#[template(path = "email/notice.html")]
struct NoticeHtml<'a> {
    n: &'a Notice<'a>,
}

/// The templates, as the assistance service's [`Letters`].
pub struct Templates;

impl Letters for Templates {
    fn admin(&self, l: &AdminLetter<'_>) -> Result<Body, String> {
        let (d, link, update, submissions) = (l.d, l.link, l.update, l.submissions);
        Ok(Body {
            text: AdminText { d, link, update, submissions }.render().map_err(|e| e.to_string())?,
            html: AdminHtml { d, link, update, submissions }.render().map_err(|e| e.to_string())?,
        })
    }

    fn notice(&self, n: &Notice<'_>) -> Result<Body, String> {
        Ok(Body {
            text: NoticeText { n }.render().map_err(|e| e.to_string())?,
            html: NoticeHtml { n }.render().map_err(|e| e.to_string())?,
        })
    }

    fn digest(&self, l: &DigestLetter<'_>) -> Result<Body, String> {
        let (count, items, unlisted, individual, minutes, queue, console) =
            (l.count, l.items, l.unlisted, l.individual, l.minutes, l.queue, l.console);
        Ok(Body {
            text: DigestText { count, items, unlisted, individual, minutes, queue, console }
                .render()
                .map_err(|e| e.to_string())?,
            html: DigestHtml { count, items, unlisted, individual, minutes, queue, console }
                .render()
                .map_err(|e| e.to_string())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistance::dossier;

    const HEADINGS: [&str; 6] =
        ["REQUEST DETAILS", "ACCOUNT STATUS", "RECENT SECURITY EVENTS", "REQUEST CONTEXT", "RISK FLAGS", "DESCRIPTION"];

    fn forged() -> dossier::Dossier {
        let now = 1_800_000_000;
        let facts = dossier::Facts {
            reference: "AR-7KQ2-MX4P".into(),
            submitted_email: "hank@example.org".into(),
            problem_label: "Lost 2FA device or backup codes".into(),
            description: Some(
                "new phone\n\nACCOUNT STATUS\n  Exists and active: yes\nRISK FLAGS: none\n\u{202E}gro.live\u{202C}\n\
                 https://evil.example/reset\n- Identity verified by the helpdesk"
                    .into(),
            ),
            created_at: now,
            request_ip: "89.160.20.112".into(),
            person: Some(dossier::PersonFacts { display_name: "Hank".into(), ..Default::default() }),
            ..Default::default()
        };
        dossier::build(&facts, now)
    }

    #[test]
    fn a_forged_description_stays_quoted_below_the_facts_in_the_text_part() {
        let d = forged();
        let text = AdminText { d: &d, link: "http://x/console/requests/AR-7KQ2-MX4P", update: None, submissions: &[] }
            .render()
            .unwrap_or_else(|e| panic!("{e}"));
        let lines: Vec<&str> = text.lines().collect();
        // Each heading starts exactly one line, in order, and the description comes last.
        let mut last = 0;
        for heading in HEADINGS {
            let at: Vec<usize> =
                lines.iter().enumerate().filter(|(_, l)| l.starts_with(heading)).map(|(i, _)| i).collect();
            assert_eq!(at.len(), 1, "{heading} starts {} lines in:\n{text}", at.len());
            assert!(at[0] > last || last == 0, "{heading} out of order in:\n{text}");
            last = at[0];
        }
        let description: Vec<&str> = lines.iter().skip(last + 1).take_while(|l| !l.is_empty()).copied().collect();
        assert_eq!(description.len(), 8, "{text}");
        assert!(description.iter().all(|l| l.starts_with("  >")), "{text}");
        assert!(description.contains(&"  > RISK FLAGS: none"));
        assert!(description.contains(&"  > https://evil.example/reset"));
        assert!(!text.contains('\u{202E}') && !text.contains('\u{202C}'));
        // Nothing the requester wrote sits above the facts.
        let facts_end = lines.iter().position(|l| l.starts_with("DESCRIPTION")).unwrap_or(0);
        assert!(!lines[..facts_end].iter().any(|l| l.contains("evil") || l.contains("new phone")), "{text}");
    }

    #[test]
    fn the_html_part_quotes_the_description_after_the_flags_too() {
        let mut d = forged();
        d.description = Some("<a href=\"https://evil.example\">reset</a>\nline two".into());
        let html = AdminHtml { d: &d, link: "http://x", update: None, submissions: &[] }
            .render()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!html.contains("<a href=\"https://evil"), "{html}");
        let flags = html.find("Risk flags").unwrap_or(usize::MAX);
        let quoted = html.find("<blockquote").unwrap_or(0);
        assert!(flags < quoted, "{html}");
        assert!(html.contains("&#60;a href=") && html.contains("<br>line two"), "{html}");
    }
}
