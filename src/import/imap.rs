//! `postern import imap --from imaps://user@host ADDRESS`: copying every folder of an account on
//! another IMAP server (like imapsync), with each message's flags, keywords and internal date.
//! Folders are opened read-only (EXAMINE, RFC 3501 §6.3.2); a message's import key is the source
//! host, user, folder, UIDVALIDITY and UID (RFC 3501 §2.3.1.1), so a second or interrupted run
//! fetches only what is not stored yet, and carries flags changed at the source since over
//! ([`Store::sync_imported_flags`]). Messages deleted at the source are kept here. Bodies are
//! fetched in batches of bounded size.

use std::io::BufRead;
use std::num::NonZeroU32;
use std::sync::Arc;

use anyhow::Context;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::fetch::{MessageDataItem, MessageDataItemName};
use imap_codec::imap_types::flag::{Flag, FlagFetch, FlagNameAttribute};
use imap_codec::imap_types::mailbox::Mailbox as ImapMailbox;
use imap_codec::imap_types::response::{Code, Data};
use postern_store::{Flags, Store};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::imap_client::{Client, Reply, Source};
use super::importer::{FolderCounts, Importer, Incoming, Options};
use super::sources;
use crate::cli::ImapArgs;
use crate::output::outln;

/// Most messages fetched with one command.
const BATCH_MESSAGES: usize = 100;
/// Most bytes (by RFC822.SIZE) fetched with one command, unless one message alone is larger.
const BATCH_BYTES: u64 = 8 << 20;

/// Runs `postern import imap`.
pub async fn run(store: &Store, args: ImapArgs, max_size: u64) -> anyhow::Result<()> {
    let source = Source::parse(&args.from)?;
    let user = store
        .user(&args.address)
        .await?
        .with_context(|| format!("no such user: {}", args.address))?;
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("reading the source password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    let tls = tls_config(args.ca.as_deref())?;
    let mut client = Client::connect(&source, password, tls)
        .await
        .with_context(|| format!("source {}", args.from))?;
    let folders = list_folders(&mut client).await?;
    let existing = store.list_mailboxes(user.id).await?;
    let options = Options {
        dry_run: args.dry_run,
        quoting: super::mbox::Quoting::Rd,
        max_size,
    };
    let mut importer = Importer::new(store, options);
    for (raw, levels) in folders {
        let Some(target) = super::target(store, &user, &levels, &existing, args.dry_run).await?
        else {
            eprintln!("warning: {raw}: folder name refused, skipped");
            continue;
        };
        match folder(&mut client, &mut importer, &source, &raw, &target).await {
            Ok(counts) => {
                let verb = if args.dry_run {
                    "would import"
                } else {
                    "imported"
                };
                outln!(
                    "{}{}: {verb} {}, {} already there{}",
                    target.name,
                    target.note(),
                    counts.new,
                    counts.there,
                    counts.changed_note()
                );
            }
            // The store failing ends the import; a folder the source cannot serve is skipped.
            Err(e) if e.downcast_ref::<postern_store::StoreError>().is_some() => return Err(e),
            Err(e) => {
                eprintln!("error: folder {raw}: {e:#}; the rest of it not imported");
                importer.done.failed_folders += 1;
            }
        }
    }
    let verb = if args.dry_run {
        "would import"
    } else {
        "imported"
    };
    outln!(
        "{verb} {} message(s) for {}",
        importer.done.imported,
        user.address
    );
    importer.done.check()
}

/// Trusted roots: the `--ca` file's certificates, else the Web PKI.
fn tls_config(ca: Option<&std::path::Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("reading {}", path.display()))?
            {
                roots.add(cert.with_context(|| format!("reading {}", path.display()))?)?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The selectable folders: (name as the server spells it, levels in UTF-8), INBOX first.
async fn list_folders(client: &mut Client) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let reply = client
        .command(CommandBody::list("", "*").map_err(|_| anyhow::anyhow!("LIST"))?)
        .await?;
    let mut warn = |w: String| eprintln!("warning: {w}");
    let mut all = Vec::new();
    for data in reply.data {
        let Data::List {
            items,
            delimiter,
            mailbox,
        } = data
        else {
            continue;
        };
        if items.contains(&FlagNameAttribute::Noselect) {
            continue;
        }
        let raw = mailbox_name(&mailbox);
        let levels = match (&mailbox, delimiter) {
            (ImapMailbox::Inbox, _) => vec!["INBOX".to_owned()],
            (_, Some(d)) => raw
                .split(d.inner())
                .map(|l| sources::level(l, true, &mut warn))
                .collect(),
            (_, None) => vec![sources::level(&raw, true, &mut warn)],
        };
        all.push((raw, levels));
    }
    all.sort_by_key(|(raw, levels)| (levels != &["INBOX"], raw.clone()));
    Ok(all)
}

fn mailbox_name(mailbox: &ImapMailbox) -> String {
    match mailbox {
        ImapMailbox::Inbox => "INBOX".to_owned(),
        ImapMailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
    }
}

/// Imports one source folder and carries flag changes of messages imported before over.
async fn folder(
    client: &mut Client,
    importer: &mut Importer<'_>,
    source: &Source,
    raw: &str,
    target: &super::Target,
) -> anyhow::Result<FolderCounts> {
    let examine = CommandBody::examine(raw).map_err(|_| anyhow::anyhow!("bad folder name"))?;
    let reply = client.command(examine).await?;
    let validity = reply
        .codes
        .iter()
        .find_map(|c| match c {
            Code::UidValidity(v) => Some(v.get()),
            _ => None,
        })
        .context("the server sent no UIDVALIDITY")?;
    let key = |uid: u32| {
        format!(
            "imap:{}@{} {raw} uidvalidity {validity} uid {uid}",
            source.user, source.host
        )
    };
    let listed = vec![MessageDataItemName::Rfc822Size, MessageDataItemName::Flags];
    let sizes = fetch(client, "1:*", listed).await?;
    let mailbox = target.mailbox.as_ref();
    importer.begin_folder(mailbox).await?;
    let mut missing = Vec::new();
    for (uid, items) in sizes {
        let size = items.iter().find_map(|i| match i {
            MessageDataItem::Rfc822Size(s) => Some(u64::from(*s)),
            _ => None,
        });
        let (flags, _, _) = message_parts(items);
        let flags = sources::valid_flags(&flags);
        if !importer.seen_before(mailbox, &key(uid), &flags).await? {
            missing.push((uid, size.unwrap_or(0)));
        }
    }
    if importer.options.dry_run {
        importer.would_import(missing.len() as u64);
        return importer.end_folder(mailbox).await;
    }
    for batch in batches(&missing) {
        let set = batch
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let items = vec![
            MessageDataItemName::Flags,
            MessageDataItemName::InternalDate,
            MessageDataItemName::BodyExt {
                section: None,
                partial: None,
                peek: true,
            },
        ];
        for (uid, items) in fetch(client, &set, items).await? {
            let (flags, date, body) = message_parts(items);
            let label = format!("folder {raw}: UID {uid}");
            let Some(body) = body else {
                importer.failed(&label, &anyhow::anyhow!("no body sent"));
                continue;
            };
            let mut incoming = Incoming::new(importer.options);
            for piece in body.chunks(super::importer::SPILL_BYTES) {
                incoming.write(piece, true).await?;
            }
            drop(body);
            let date = date.unwrap_or_else(postern_store::unix_now);
            importer
                .offer(mailbox, incoming, &flags, date, key(uid), label)
                .await?;
        }
    }
    importer.end_folder(mailbox).await
}

/// `UID FETCH set (UID items...)`: each message's UID and items, in the server's order.
async fn fetch(
    client: &mut Client,
    set: &str,
    mut items: Vec<MessageDataItemName<'static>>,
) -> anyhow::Result<Vec<(u32, Vec<MessageDataItem<'static>>)>> {
    items.push(MessageDataItemName::Uid);
    let command =
        CommandBody::fetch(set, items, true).map_err(|_| anyhow::anyhow!("bad UID set {set}"))?;
    let Reply { data, .. } = client.command(command).await?;
    Ok(data
        .into_iter()
        .filter_map(|d| match d {
            Data::Fetch { items, .. } => {
                let items = items.into_inner();
                let uid = items.iter().find_map(|i| match i {
                    MessageDataItem::Uid(u) => Some(NonZeroU32::get(*u)),
                    _ => None,
                })?;
                Some((uid, items))
            }
            _ => None,
        })
        .collect())
}

/// UIDs grouped into fetches of at most [`BATCH_MESSAGES`] messages and [`BATCH_BYTES`] bytes.
fn batches(missing: &[(u32, u64)]) -> Vec<Vec<u32>> {
    let mut all: Vec<Vec<u32>> = Vec::new();
    let mut bytes = 0;
    for &(uid, size) in missing {
        match all.last_mut() {
            Some(last) if last.len() < BATCH_MESSAGES && bytes + size <= BATCH_BYTES => {
                last.push(uid);
                bytes += size;
            }
            _ => {
                all.push(vec![uid]);
                bytes = size;
            }
        }
    }
    all
}

/// A fetched message's flags (\Recent dropped: it is session state, RFC 3501 §2.3.2), internal
/// date (Unix seconds) and bytes.
fn message_parts(items: Vec<MessageDataItem<'static>>) -> (Flags, Option<i64>, Option<Vec<u8>>) {
    let mut flags = Flags::default();
    let mut date = None;
    let mut body = None;
    for item in items {
        match item {
            MessageDataItem::Flags(list) => {
                for f in list {
                    match f {
                        FlagFetch::Flag(Flag::Answered) => flags.system |= Flags::ANSWERED,
                        FlagFetch::Flag(Flag::Deleted) => flags.system |= Flags::DELETED,
                        FlagFetch::Flag(Flag::Draft) => flags.system |= Flags::DRAFT,
                        FlagFetch::Flag(Flag::Flagged) => flags.system |= Flags::FLAGGED,
                        FlagFetch::Flag(Flag::Seen) => flags.system |= Flags::SEEN,
                        FlagFetch::Flag(Flag::Keyword(k)) => {
                            flags.keywords.insert(k.as_ref().to_owned());
                        }
                        FlagFetch::Flag(Flag::Extension(_)) | FlagFetch::Recent => {}
                    }
                }
            }
            MessageDataItem::InternalDate(d) => date = Some(d.as_ref().timestamp()),
            MessageDataItem::BodyExt {
                section: None,
                data,
                ..
            } => body = data.0.map(|b| b.into_inner().into_owned()),
            _ => {}
        }
    }
    (flags, date, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_bound_count_and_bytes() {
        let many: Vec<(u32, u64)> = (1..=250).map(|u| (u, 10)).collect();
        let sizes: Vec<usize> = batches(&many).iter().map(Vec::len).collect();
        assert_eq!(sizes, [100, 100, 50]);
        let big = [
            (1, BATCH_BYTES + 1),
            (2, BATCH_BYTES / 2),
            (3, BATCH_BYTES / 2),
            (4, 1),
        ];
        assert_eq!(batches(&big), [vec![1], vec![2, 3], vec![4]]);
        assert!(batches(&[]).is_empty());
    }
}
