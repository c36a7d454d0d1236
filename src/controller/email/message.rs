//! The text of each mail, plain and HTML, as pure functions of what it announces. No mail
//! carries an Agent-Token: a notice names the token's fingerprint only.

use jiff::Timestamp;
use lettre::{
    Message,
    message::{Mailbox, MultiPart},
};

use crate::{
    api::{MailKind, Product},
    reconcile::email::Mail,
};

/// The largest message the operator sends; rendering anything larger is refused.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The authorization a mail is about.
#[derive(Clone, Debug)]
pub(crate) struct About<'a> {
    /// The DeveloperCenterApplication's name.
    pub application: &'a str,
    /// Its Client ID.
    pub client_id: &'a str,
    /// The ACQP's ID.
    pub acqp_id: &'a str,
    /// The ACQP's display name, if the spec gives one.
    pub acqp_name: Option<&'a str>,
    /// `namespace/name` of the AcqpAuthorization.
    pub resource: &'a str,
}

/// What an invitation says.
#[derive(Clone, Debug)]
pub(crate) struct Invitation<'a> {
    /// The products the URL asks for.
    pub products: &'a [Product],
    /// The authorization URL.
    pub url: &'a str,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// What a status-change notice says.
#[derive(Clone, Debug)]
pub(crate) struct Notice<'a> {
    /// The products the ACQP has authorized.
    pub products: &'a [Product],
    /// The current Agent-Token's fingerprint (never the token).
    pub fingerprint: Option<&'a str>,
    /// The grant count.
    pub revision: i64,
    /// The token Secret's name.
    pub secret: &'a str,
}

/// A mail's subject and bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rendered {
    /// The Subject header.
    pub subject: String,
    /// The text/plain part.
    pub text: String,
    /// The text/html part.
    pub html: String,
}

/// The invitation to the ACQP's contacts.
pub(crate) fn invitation(about: &About<'_>, invitation: &Invitation<'_>) -> Rendered {
    let acqp = acqp_label(about);
    let products = Product::join_console_names(invitation.products);
    let subject = format!(
        "Authorize {products} for TSP application {} ({})",
        about.application, about.client_id
    );
    let text = format!(
        "Hello,\n\n\
         The TSP application {app} (Client ID {client}) asks {acqp} to authorize these \
         Alipay+ products: {products}.\n\n\
         Open this link, sign in to the Alipay+ Developer Center, review the scope and click \
         Authorize:\n\n{url}\n\n\
         The link works until {expires}.\n\n\
         Sent by acqp-operator for AcqpAuthorization {resource}.\n",
        app = about.application,
        client = about.client_id,
        url = invitation.url,
        expires = invitation.expires_at,
        resource = about.resource,
    );
    let html = format!(
        "<!DOCTYPE html><html><body>\
         <p>Hello,</p>\
         <p>The TSP application <b>{app}</b> (Client ID {client}) asks {acqp} to authorize \
         these Alipay+ products: <b>{products}</b>.</p>\
         <p>Open this link, sign in to the Alipay+ Developer Center, review the scope and click \
         Authorize:</p>\
         <p><a href=\"{url}\">{url}</a></p>\
         <p>The link works until {expires}.</p>\
         <p><small>Sent by acqp-operator for AcqpAuthorization {resource}.</small></p>\
         </body></html>",
        app = escape(about.application),
        client = escape(about.client_id),
        acqp = escape(&acqp),
        products = escape(&products),
        url = escape(invitation.url),
        expires = invitation.expires_at,
        resource = escape(about.resource),
    );
    Rendered {
        subject,
        text,
        html,
    }
}

/// The TSP team's warning that the URL sent to the ACQP expires unused. The URL itself is not
/// repeated: it is a capability for the ACQP, and it is in status.
pub(crate) fn expiring(about: &About<'_>, invitation: &Invitation<'_>) -> Rendered {
    let acqp = acqp_label(about);
    let products = Product::join_console_names(invitation.products);
    let subject = format!(
        "{acqp} has not used its authorization URL for {}; it expires at {}",
        about.application, invitation.expires_at
    );
    let text = format!(
        "{acqp} has not yet authorized {products} for TSP application {app} (Client ID \
         {client}), and its authorization URL expires at {expires}. Remind the ACQP; after \
         that the operator issues a new URL and mails it again.\n\n\
         The URL: kubectl get acqpauth -n {namespace} {name} -o \
         jsonpath='{{.status.authorizationUrl}}'\n\n\
         Sent by acqp-operator for AcqpAuthorization {resource}.\n",
        app = about.application,
        client = about.client_id,
        expires = invitation.expires_at,
        namespace = about.resource.split('/').next().unwrap_or_default(),
        name = about.resource.split('/').nth(1).unwrap_or_default(),
        resource = about.resource,
    );
    let html = format!(
        "<!DOCTYPE html><html><body><p>{}</p></body></html>",
        escape(&text).replace("\n\n", "</p><p>")
    );
    Rendered {
        subject,
        text,
        html,
    }
}

/// The status-change notice to the TSP team.
pub(crate) fn notice(about: &About<'_>, kind: MailKind, notice: &Notice<'_>) -> Rendered {
    let acqp = acqp_label(about);
    let products = Product::join_console_names(notice.products);
    let fingerprint = notice.fingerprint.unwrap_or("unknown");
    let (headline, detail) = match kind {
        MailKind::Revoked => (
            format!("{acqp} revoked its authorization"),
            format!(
                "The Agent-Token (fingerprint {fingerprint}) no longer works. The Secret {} \
                 keeps it until you act: ask the ACQP to authorize again, or set \
                 spec.revocationPolicy: Reinvite.",
                notice.secret
            ),
        ),
        MailKind::TokenRotated => (
            format!("{acqp} authorized again: new Agent-Token"),
            format!(
                "Grant {} replaced the Agent-Token in Secret {}; its fingerprint is now \
                 {fingerprint}. Authorized products: {products}.",
                notice.revision, notice.secret
            ),
        ),
        // Invitations and expiry warnings have their own functions.
        MailKind::Authorized | MailKind::Invitation | MailKind::UrlExpiring => (
            format!("{acqp} authorized {products}"),
            format!(
                "The Agent-Token is in Secret {} (fingerprint {fingerprint}).",
                notice.secret
            ),
        ),
    };
    let subject = format!("{headline} for {}", about.application);
    let text = format!(
        "{headline} for TSP application {app} (Client ID {client}).\n\n{detail}\n\n\
         Sent by acqp-operator for AcqpAuthorization {resource}.\n",
        app = about.application,
        client = about.client_id,
        resource = about.resource,
    );
    let html = format!(
        "<!DOCTYPE html><html><body>\
         <p><b>{headline}</b> for TSP application {app} (Client ID {client}).</p>\
         <p>{detail}</p>\
         <p><small>Sent by acqp-operator for AcqpAuthorization {resource}.</small></p>\
         </body></html>",
        headline = escape(&headline),
        app = escape(about.application),
        client = escape(about.client_id),
        detail = escape(&detail),
        resource = escape(about.resource),
    );
    Rendered {
        subject,
        text,
        html,
    }
}

/// The RFC 5322 message for `mail` from `from`, within [`MAX_MESSAGE_BYTES`].
pub(crate) fn build(from: &str, mail: &Mail, rendered: Rendered) -> Result<Message, String> {
    let mailbox = |address: &str| {
        address
            .parse::<Mailbox>()
            .map_err(|e| format!("{address:?} is not an e-mail address: {e}"))
    };
    let mut builder = Message::builder()
        .message_id(Some(mail.message_id.clone()))
        .from(mailbox(from)?)
        .subject(rendered.subject);
    for to in &mail.to {
        builder = builder.to(mailbox(to)?);
    }
    for cc in &mail.cc {
        builder = builder.cc(mailbox(cc)?);
    }
    let body = MultiPart::alternative_plain_html(rendered.text, rendered.html);
    let message = builder
        .multipart(body)
        .map_err(|e| format!("cannot build the message: {e}"))?;
    let size = message.formatted().len();
    if size > MAX_MESSAGE_BYTES {
        return Err(format!(
            "the message would be {size} bytes, more than the {MAX_MESSAGE_BYTES} the operator \
             sends: shorten acqp.name"
        ));
    }
    Ok(message)
}

fn acqp_label(about: &About<'_>) -> String {
    match about.acqp_name {
        Some(name) => format!("ACQP {name} ({})", about.acqp_id),
        None => format!("ACQP {}", about.acqp_id),
    }
}

/// `text` safe inside HTML text and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about() -> About<'static> {
        About {
            application: "demo",
            client_id: "SANDBOX_DEMO",
            acqp_id: "1022188000000000001",
            acqp_name: Some("Acme <Pay> & Co"),
            resource: "payments/acme",
        }
    }

    fn mail(kind: MailKind) -> Mail {
        Mail {
            kind,
            message_id: "<invitation.0123@acqp-operator.io>".into(),
            to: vec!["ops@acqp.example".into()],
            cc: vec!["cto@acqp.example".into()],
            failed_attempts: 0,
        }
    }

    #[test]
    fn an_invitation_names_the_application_products_url_and_expiry() {
        let url = "https://dc.example/consent?t=a&b=c";
        let expires = Timestamp::from_second(1_800_000_000).unwrap();
        let products = [Product::CashierPayment, Product::AutoDebit];
        let rendered = invitation(
            &about(),
            &Invitation {
                products: &products,
                url,
                expires_at: expires,
            },
        );
        assert_eq!(
            rendered.subject,
            "Authorize Cashier Payment, Auto Debit for TSP application demo (SANDBOX_DEMO)"
        );
        for part in [&rendered.text, &rendered.html] {
            assert!(part.contains("1022188000000000001"), "{part}");
            assert!(part.contains(&expires.to_string()), "{part}");
            assert!(part.contains("Cashier Payment, Auto Debit"), "{part}");
        }
        assert!(rendered.text.contains(url));
        assert!(rendered.text.contains("ACQP Acme <Pay> & Co"));
        assert!(
            rendered
                .html
                .contains("href=\"https://dc.example/consent?t=a&amp;b=c\"")
        );
        assert!(rendered.html.contains("Acme &lt;Pay&gt; &amp; Co"));
        assert!(!rendered.html.contains("<Pay>"), "the ACQP name is escaped");
    }

    #[test]
    fn notices_name_the_fingerprint_and_say_what_to_do() {
        let products = [Product::CashierPayment];
        let facts = Notice {
            products: &products,
            fingerprint: Some("sha256:0123456789abcdef"),
            revision: 2,
            secret: "acme-agent-token",
        };
        let revoked = notice(&about(), MailKind::Revoked, &facts);
        assert!(revoked.subject.contains("revoked its authorization"));
        assert!(revoked.text.contains("sha256:0123456789abcdef"));
        assert!(revoked.text.contains("Reinvite"));
        let rotated = notice(&about(), MailKind::TokenRotated, &facts);
        assert!(
            rotated.text.contains("Grant 2 replaced"),
            "{}",
            rotated.text
        );
        let authorized = notice(&about(), MailKind::Authorized, &facts);
        assert!(authorized.subject.contains("authorized Cashier Payment"));
    }

    #[test]
    fn an_expiry_warning_says_when_and_how_to_find_the_url_but_not_the_url() {
        let expires = Timestamp::from_second(1_800_000_000).unwrap();
        let rendered = expiring(
            &about(),
            &Invitation {
                products: &[Product::CashierPayment],
                url: "https://dc.example/consent/secret",
                expires_at: expires,
            },
        );
        assert!(
            rendered.subject.contains(&expires.to_string()),
            "{}",
            rendered.subject
        );
        for part in [&rendered.text, &rendered.html] {
            assert!(!part.contains("consent/secret"), "{part}");
            assert!(
                part.contains("kubectl get acqpauth -n payments acme"),
                "{part}"
            );
        }
    }

    #[test]
    fn the_message_carries_the_derived_id_and_every_recipient() {
        let rendered = notice(
            &about(),
            MailKind::Authorized,
            &Notice {
                products: &[Product::AutoDebit],
                fingerprint: None,
                revision: 1,
                secret: "s",
            },
        );
        let message = build(
            "operator@tsp.example",
            &mail(MailKind::Authorized),
            rendered,
        )
        .unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(
            text.contains("Message-ID: <invitation.0123@acqp-operator.io>"),
            "{text}"
        );
        assert!(text.contains("To: ops@acqp.example"), "{text}");
        assert!(text.contains("Cc: cto@acqp.example"), "{text}");
        assert!(text.contains("multipart/alternative"), "{text}");
        let envelope = message.envelope();
        assert_eq!(envelope.to().len(), 2);
    }

    #[test]
    fn oversized_messages_are_refused() {
        let long = "x".repeat(MAX_MESSAGE_BYTES);
        let mut facts = about();
        facts.acqp_name = Some(&long);
        let rendered = notice(
            &facts,
            MailKind::Authorized,
            &Notice {
                products: &[],
                fingerprint: None,
                revision: 1,
                secret: "s",
            },
        );
        let error = build(
            "operator@tsp.example",
            &mail(MailKind::Authorized),
            rendered,
        )
        .unwrap_err();
        assert!(error.contains("more than the 65536"), "{error}");
    }
}
