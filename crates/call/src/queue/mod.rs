//! Call queues (`<Enqueue>`, `<Dial><Queue>`, the REST `Queues` and `Members` resources):
//! one registry per [`crate::Engine`], so every call the engine runs (all of `serve`'s, all
//! of a load run's) sees the same queues.
//!
//! A queue is keyed by (account SID, friendly name), created on demand by `<Enqueue>` or
//! explicitly through REST. Its members wait in FIFO order; each holds the sending half of
//! the channel that tells its call how it left: bridged to a dequeuing call, or redirected
//! by a REST dequeue. A member that hangs up removes itself (its [`Ticket`] drops).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use dialtone_audio::FrameSet;
use serde::Serialize;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::Redirect;

pub(crate) mod events;
pub use events::QueueEvent;

/// Twilio's default `max_size` of a queue.
pub const DEFAULT_MAX_SIZE: u32 = 1000;
/// The largest `MaxSize` Twilio accepts.
pub const MAX_MAX_SIZE: u32 = 5000;
/// Queues one account may hold: an app that enqueues into ever-new names must not grow the
/// registry without bound.
pub const MAX_QUEUES_PER_ACCOUNT: usize = 1000;
/// Accounts with queues (serve's accounts are configured; a load run has one).
pub const MAX_ACCOUNTS: usize = 1000;
/// Twilio's limit on a queue's friendly name.
pub const MAX_NAME: usize = 64;

/// Why a queue operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The queue holds `max_size` members already.
    #[error("queue {name:?} is full ({max_size} members)")]
    Full {
        /// The queue's friendly name.
        name: String,
        /// Its limit.
        max_size: u32,
    },
    /// The account holds [`MAX_QUEUES_PER_ACCOUNT`] queues already.
    #[error("the account has {MAX_QUEUES_PER_ACCOUNT} queues already; delete one first")]
    TooManyQueues,
    /// [`MAX_ACCOUNTS`] accounts hold queues already.
    #[error("{MAX_ACCOUNTS} accounts have queues already")]
    TooManyAccounts,
    /// No queue with this SID (or name) in the account.
    #[error("no such queue")]
    NoQueue,
    /// No such member (or `Front` of an empty queue).
    #[error("no such member")]
    NoMember,
    /// A queue with members cannot be deleted.
    #[error("queue {0:?} is not empty")]
    NotEmpty(String),
    /// Another queue of the account has this friendly name.
    #[error("a queue named {0:?} already exists")]
    NameTaken(String),
    /// The friendly name is empty or longer than [`MAX_NAME`].
    #[error("a queue's friendly name is 1 to {MAX_NAME} characters")]
    BadName,
    /// `max_size` outside 1 to [`MAX_MAX_SIZE`].
    #[error("MaxSize must be 1 to {MAX_MAX_SIZE}")]
    BadSize,
}

/// A queue as the REST API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueInfo {
    /// `QU…`.
    pub sid: String,
    /// The account.
    pub account_sid: String,
    /// The queue's name (what `<Enqueue>` and `<Queue>` name).
    pub friendly_name: String,
    /// Members it takes.
    pub max_size: u32,
    /// Members waiting now.
    pub current_size: u32,
    /// The mean wait of the members waiting now, whole seconds.
    pub average_wait_time: u64,
    /// When it was created.
    pub date_created: SystemTime,
    /// When it last changed (REST update).
    pub date_updated: SystemTime,
}

/// A waiting member as the REST API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberInfo {
    /// The member's call.
    pub call_sid: String,
    /// Its queue.
    pub queue_sid: String,
    /// 1 for the front of the queue.
    pub position: u32,
    /// How long it has waited, whole seconds.
    pub wait_time: u64,
    /// When it joined.
    pub date_enqueued: SystemTime,
}

/// Which member a REST request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// The member at the front (`Front`).
    Front,
    /// The member with this call SID.
    Call(String),
}

impl Who {
    /// `Front` or a call SID, as the REST path spells it.
    pub fn parse(s: &str) -> Self {
        if s == "Front" {
            Self::Front
        } else {
            Self::Call(s.to_string())
        }
    }
}

/// How a member leaves the queue other than by itself.
#[derive(Debug)]
pub(crate) enum Dequeued {
    /// A `<Dial><Queue>` took it: bridge to that call.
    Bridge(Bridge),
    /// A REST dequeue: run this TwiML.
    Redirect(Redirect),
}

/// One `<Dial><Queue>`'s bridge as the member receives it.
#[derive(Debug)]
pub(crate) struct Bridge {
    /// What both sides share.
    pub(crate) link: Arc<BridgeLink>,
    /// A document to run on the member before the bridge (`<Queue url>`), resolved, with
    /// its method.
    pub(crate) announce: Option<(String, crate::HttpMethod)>,
    /// The member answers with its side once it is in the bridge.
    pub(crate) reply: oneshot::Sender<MemberSide>,
}

/// What the member brings into a bridge.
#[derive(Debug)]
pub(crate) struct MemberSide {
    /// When the member joined the bridge (after any `<Queue url>` document).
    pub(crate) at: Instant,
    /// The member's caller audio from there: what the agent hears.
    pub(crate) audio: Arc<FrameSet>,
}

/// What both calls of a bridge share.
#[derive(Debug)]
pub(crate) struct BridgeLink {
    /// The dequeuing (agent's) call.
    pub(crate) agent_sid: String,
    /// The member's call.
    pub(crate) member_sid: String,
    /// The queue.
    pub(crate) queue_sid: String,
    /// How long the member waited.
    pub(crate) queue_time: Duration,
    /// The agent's caller audio from the bridge on: what the member hears (set once the
    /// member is in the bridge).
    pub(crate) agent_audio: std::sync::OnceLock<Arc<FrameSet>>,
    /// Set once by whichever side ends the bridge: when, and why.
    pub(crate) ended: watch::Sender<Option<(Instant, String)>>,
}

impl BridgeLink {
    /// Ends the bridge (the first reason wins); returns when it ended.
    pub(crate) fn end(&self, why: impl Into<String>) -> Instant {
        let why = why.into();
        self.ended.send_if_modified(|e| {
            if e.is_some() {
                return false;
            }
            *e = Some((Instant::now(), why));
            true
        });
        self.ended
            .borrow()
            .as_ref()
            .map_or_else(Instant::now, |e| e.0)
    }

    /// When and why it ended, once it has.
    pub(crate) fn ended(&self) -> Option<(Instant, String)> {
        self.ended.borrow().clone()
    }
}

struct Member {
    call_sid: String,
    since: Instant,
    enqueued: SystemTime,
    tx: oneshot::Sender<Dequeued>,
}

struct Queue {
    sid: String,
    name: String,
    max_size: u32,
    created: SystemTime,
    updated: SystemTime,
    members: VecDeque<Member>,
}

impl Queue {
    fn info(&self, account_sid: &str) -> QueueInfo {
        let n = self.members.len() as u64;
        let total: u64 = self
            .members
            .iter()
            .map(|m| m.since.elapsed().as_secs())
            .sum();
        QueueInfo {
            sid: self.sid.clone(),
            account_sid: account_sid.to_string(),
            friendly_name: self.name.clone(),
            max_size: self.max_size,
            current_size: n as u32,
            average_wait_time: total.checked_div(n).unwrap_or(0),
            date_created: self.created,
            date_updated: self.updated,
        }
    }

    fn member(&self, i: usize) -> MemberInfo {
        let m = &self.members[i];
        MemberInfo {
            call_sid: m.call_sid.clone(),
            queue_sid: self.sid.clone(),
            position: i as u32 + 1,
            wait_time: m.since.elapsed().as_secs(),
            date_enqueued: m.enqueued,
        }
    }

    fn index(&self, who: &Who) -> Option<usize> {
        match who {
            Who::Front => (!self.members.is_empty()).then_some(0),
            Who::Call(sid) => self.members.iter().position(|m| &m.call_sid == sid),
        }
    }
}

#[derive(Default)]
struct Inner {
    /// Per account, its queues in creation order.
    accounts: Vec<(String, Vec<Queue>)>,
}

impl Inner {
    fn queues(&self, account: &str) -> &[Queue] {
        self.accounts
            .iter()
            .find(|(a, _)| a == account)
            .map_or(&[], |(_, q)| q.as_slice())
    }

    fn queues_mut(&mut self, account: &str) -> Option<&mut Vec<Queue>> {
        self.accounts
            .iter_mut()
            .find(|(a, _)| a == account)
            .map(|(_, q)| q)
    }

    /// The account's queue list, made if need be.
    fn account(&mut self, account: &str) -> Result<&mut Vec<Queue>, QueueError> {
        if let Some(i) = self.accounts.iter().position(|(a, _)| a == account) {
            return Ok(&mut self.accounts[i].1);
        }
        if self.accounts.len() >= MAX_ACCOUNTS {
            return Err(QueueError::TooManyAccounts);
        }
        self.accounts.push((account.to_string(), Vec::new()));
        Ok(&mut self.accounts.last_mut().expect("just pushed").1)
    }

    fn by_sid(&mut self, account: &str, sid: &str) -> Result<&mut Queue, QueueError> {
        self.queues_mut(account)
            .and_then(|qs| qs.iter_mut().find(|q| q.sid == sid))
            .ok_or(QueueError::NoQueue)
    }
}

/// Every queue of an engine.
pub struct Queues {
    inner: Mutex<Inner>,
    /// Bumped whenever a member joins: a `<Dial><Queue>` on an empty queue waits on it.
    joined: watch::Sender<u64>,
}

impl Default for Queues {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            joined: watch::channel(0).0,
        }
    }
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues").finish_non_exhaustive()
    }
}

fn check_name(name: &str) -> Result<(), QueueError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME {
        return Err(QueueError::BadName);
    }
    Ok(())
}

fn check_size(max_size: u32) -> Result<(), QueueError> {
    if (1..=MAX_MAX_SIZE).contains(&max_size) {
        Ok(())
    } else {
        Err(QueueError::BadSize)
    }
}

fn new_queue(name: &str, max_size: u32) -> Queue {
    let now = SystemTime::now();
    Queue {
        sid: dialtone_protocol::sid::random("QU"),
        name: name.to_string(),
        max_size,
        created: now,
        updated: now,
        members: VecDeque::new(),
    }
}

impl Queues {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a queue (REST `POST Queues.json`).
    pub fn create(
        &self,
        account_sid: &str,
        name: &str,
        max_size: u32,
    ) -> Result<QueueInfo, QueueError> {
        check_name(name)?;
        check_size(max_size)?;
        let mut inner = self.lock();
        let qs = inner.account(account_sid)?;
        if qs.iter().any(|q| q.name == name) {
            return Err(QueueError::NameTaken(name.to_string()));
        }
        if qs.len() >= MAX_QUEUES_PER_ACCOUNT {
            return Err(QueueError::TooManyQueues);
        }
        let q = new_queue(name, max_size);
        let info = q.info(account_sid);
        qs.push(q);
        Ok(info)
    }

    /// The account's queues, in creation order.
    pub fn list(&self, account_sid: &str) -> Vec<QueueInfo> {
        self.lock()
            .queues(account_sid)
            .iter()
            .map(|q| q.info(account_sid))
            .collect()
    }

    /// One queue by SID.
    pub fn get(&self, account_sid: &str, sid: &str) -> Option<QueueInfo> {
        self.lock()
            .queues(account_sid)
            .iter()
            .find(|q| q.sid == sid)
            .map(|q| q.info(account_sid))
    }

    /// One queue by friendly name.
    pub fn by_name(&self, account_sid: &str, name: &str) -> Option<QueueInfo> {
        self.lock()
            .queues(account_sid)
            .iter()
            .find(|q| q.name == name)
            .map(|q| q.info(account_sid))
    }

    /// Renames or resizes a queue (REST update); a smaller `max_size` keeps who waits.
    pub fn update(
        &self,
        account_sid: &str,
        sid: &str,
        name: Option<&str>,
        max_size: Option<u32>,
    ) -> Result<QueueInfo, QueueError> {
        if let Some(n) = name {
            check_name(n)?;
        }
        if let Some(m) = max_size {
            check_size(m)?;
        }
        let mut inner = self.lock();
        if let Some(n) = name {
            let taken = inner
                .queues(account_sid)
                .iter()
                .any(|q| q.name == n && q.sid != sid);
            if taken {
                return Err(QueueError::NameTaken(n.to_string()));
            }
        }
        let q = inner.by_sid(account_sid, sid)?;
        if let Some(n) = name {
            q.name = n.to_string();
        }
        if let Some(m) = max_size {
            q.max_size = m;
        }
        q.updated = SystemTime::now();
        Ok(q.info(account_sid))
    }

    /// Deletes an empty queue.
    pub fn delete(&self, account_sid: &str, sid: &str) -> Result<(), QueueError> {
        let mut inner = self.lock();
        let qs = inner.queues_mut(account_sid).ok_or(QueueError::NoQueue)?;
        let i = qs
            .iter()
            .position(|q| q.sid == sid)
            .ok_or(QueueError::NoQueue)?;
        if !qs[i].members.is_empty() {
            return Err(QueueError::NotEmpty(qs[i].name.clone()));
        }
        qs.remove(i);
        Ok(())
    }

    /// A queue's members, front first.
    pub fn members(&self, account_sid: &str, sid: &str) -> Result<Vec<MemberInfo>, QueueError> {
        let inner = self.lock();
        let q = inner
            .queues(account_sid)
            .iter()
            .find(|q| q.sid == sid)
            .ok_or(QueueError::NoQueue)?;
        Ok((0..q.members.len()).map(|i| q.member(i)).collect())
    }

    /// One member.
    pub fn member(
        &self,
        account_sid: &str,
        sid: &str,
        who: &Who,
    ) -> Result<MemberInfo, QueueError> {
        let inner = self.lock();
        let q = inner
            .queues(account_sid)
            .iter()
            .find(|q| q.sid == sid)
            .ok_or(QueueError::NoQueue)?;
        let i = q.index(who).ok_or(QueueError::NoMember)?;
        Ok(q.member(i))
    }

    /// REST dequeue: takes the member out and has its call run `to`. The member as it was
    /// (position, wait) comes back.
    pub fn dequeue(
        &self,
        account_sid: &str,
        sid: &str,
        who: &Who,
        to: Redirect,
    ) -> Result<MemberInfo, QueueError> {
        let mut inner = self.lock();
        let q = inner.by_sid(account_sid, sid)?;
        let i = q.index(who).ok_or(QueueError::NoMember)?;
        let info = q.member(i);
        let m = q.members.remove(i).ok_or(QueueError::NoMember)?;
        // A member that hung up meanwhile has dropped its receiver: nothing to run.
        let _ = m.tx.send(Dequeued::Redirect(to));
        Ok(info)
    }

    /// A call joins queue `name` (made if need be) at the back.
    pub(crate) fn join(
        &self,
        account_sid: &str,
        name: &str,
        call_sid: &str,
    ) -> Result<Ticket<'_>, QueueError> {
        check_name(name)?;
        let (tx, rx) = oneshot::channel();
        let sid = {
            let mut inner = self.lock();
            let qs = inner.account(account_sid)?;
            let i = match qs.iter().position(|q| q.name == name) {
                Some(i) => i,
                None => {
                    if qs.len() >= MAX_QUEUES_PER_ACCOUNT {
                        return Err(QueueError::TooManyQueues);
                    }
                    qs.push(new_queue(name, DEFAULT_MAX_SIZE));
                    qs.len() - 1
                }
            };
            let q = &mut qs[i];
            if q.members.len() >= q.max_size as usize {
                return Err(QueueError::Full {
                    name: name.to_string(),
                    max_size: q.max_size,
                });
            }
            q.members.push_back(Member {
                call_sid: call_sid.to_string(),
                since: Instant::now(),
                enqueued: SystemTime::now(),
                tx,
            });
            q.sid.clone()
        };
        self.joined.send_modify(|n| *n = n.wrapping_add(1));
        Ok(Ticket {
            queues: self,
            account_sid: account_sid.to_string(),
            queue_sid: sid,
            call_sid: call_sid.to_string(),
            since: Instant::now(),
            rx: Some(rx),
        })
    }

    /// Takes the front member of queue `name` for a `<Dial><Queue>`: `Err(NoQueue)` when
    /// the queue does not exist, `Ok(None)` when it is empty.
    pub(crate) fn take_front(
        &self,
        account_sid: &str,
        name: &str,
    ) -> Result<Option<Taken>, QueueError> {
        let mut inner = self.lock();
        let q = inner
            .queues_mut(account_sid)
            .and_then(|qs| qs.iter_mut().find(|q| q.name == name))
            .ok_or(QueueError::NoQueue)?;
        Ok(q.members.pop_front().map(|m| Taken {
            call_sid: m.call_sid,
            queue_sid: q.sid.clone(),
            queue_time: m.since.elapsed(),
            tx: m.tx,
        }))
    }

    /// Wakes on each join (subscribe before looking at the queue).
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.joined.subscribe()
    }

    /// Where a member stands: (position, size, max size, mean wait in s); `None` once it
    /// has left.
    fn standing(&self, account_sid: &str, queue_sid: &str, call_sid: &str) -> Option<Standing> {
        let inner = self.lock();
        let q = inner
            .queues(account_sid)
            .iter()
            .find(|q| q.sid == queue_sid)?;
        let i = q.index(&Who::Call(call_sid.to_string()))?;
        let info = q.info(account_sid);
        Some(Standing {
            position: i as u32 + 1,
            size: info.current_size,
            max_size: info.max_size,
            average_wait: info.average_wait_time,
        })
    }

    fn leave(&self, account_sid: &str, queue_sid: &str, call_sid: &str) {
        let mut inner = self.lock();
        if let Ok(q) = inner.by_sid(account_sid, queue_sid) {
            q.members.retain(|m| m.call_sid != call_sid);
        }
    }
}

/// A member's standing, for the waitUrl request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Standing {
    pub(crate) position: u32,
    pub(crate) size: u32,
    pub(crate) max_size: u32,
    pub(crate) average_wait: u64,
}

/// The front member as a `<Dial><Queue>` took it.
#[derive(Debug)]
pub(crate) struct Taken {
    pub(crate) call_sid: String,
    pub(crate) queue_sid: String,
    pub(crate) queue_time: Duration,
    pub(crate) tx: oneshot::Sender<Dequeued>,
}

/// A call's place in a queue; dropping it leaves the queue (a hang-up, `<Leave>`).
pub(crate) struct Ticket<'q> {
    queues: &'q Queues,
    account_sid: String,
    pub(crate) queue_sid: String,
    call_sid: String,
    pub(crate) since: Instant,
    /// How the call is taken out; `None` once it was.
    pub(crate) rx: Option<oneshot::Receiver<Dequeued>>,
}

impl Ticket<'_> {
    /// Where the call stands now.
    pub(crate) fn standing(&self) -> Option<Standing> {
        self.queues
            .standing(&self.account_sid, &self.queue_sid, &self.call_sid)
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.queues
            .leave(&self.account_sid, &self.queue_sid, &self.call_sid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fifo_full_leave_and_delete() {
        let qs = Queues::default();
        let a = qs.join("AC1", "support", "CA1").unwrap();
        let b = qs.join("AC1", "support", "CA2").unwrap();
        assert_eq!(a.queue_sid, b.queue_sid);
        assert!(a.queue_sid.starts_with("QU") && a.queue_sid.len() == 34);
        assert_eq!(b.standing().unwrap().position, 2);
        let sid = a.queue_sid.clone();
        assert_eq!(
            qs.delete("AC1", &sid),
            Err(QueueError::NotEmpty("support".into()))
        );
        drop(a);
        assert_eq!(b.standing().unwrap().position, 1);
        qs.update("AC1", &sid, None, Some(1)).unwrap();
        assert!(matches!(
            qs.join("AC1", "support", "CA3"),
            Err(QueueError::Full { max_size: 1, .. })
        ));
        let t = qs.take_front("AC1", "support").unwrap().unwrap();
        assert_eq!(t.call_sid, "CA2");
        assert!(qs.take_front("AC1", "support").unwrap().is_none());
        assert!(matches!(
            qs.take_front("AC1", "sales"),
            Err(QueueError::NoQueue)
        ));
        // Another account sees none of it.
        assert!(qs.list("AC2").is_empty());
        drop(b);
        qs.delete("AC1", &sid).unwrap();
        assert!(qs.list("AC1").is_empty());
    }

    #[test]
    fn queues_per_account_are_bounded() {
        let qs = Queues::default();
        for i in 0..MAX_QUEUES_PER_ACCOUNT {
            qs.create("AC1", &format!("q{i}"), 10).unwrap();
        }
        assert_eq!(
            qs.create("AC1", "one-more", 10),
            Err(QueueError::TooManyQueues)
        );
        assert!(matches!(
            qs.join("AC1", "one-more", "CA1"),
            Err(QueueError::TooManyQueues)
        ));
        assert_eq!(
            qs.create("AC1", "q1", 10),
            Err(QueueError::NameTaken("q1".into()))
        );
        assert_eq!(qs.create("AC2", "", 10), Err(QueueError::BadName));
        assert_eq!(qs.create("AC2", "x", 0), Err(QueueError::BadSize));
    }

    #[tokio::test]
    async fn rest_dequeue_reaches_the_member() {
        let qs = Queues::default();
        let mut t = qs.join("AC1", "q", "CA1").unwrap();
        let m = qs
            .dequeue(
                "AC1",
                &t.queue_sid.clone(),
                &Who::Front,
                Redirect::Twiml("<Response/>".into()),
            )
            .unwrap();
        assert_eq!((m.position, m.call_sid.as_str()), (1, "CA1"));
        let got = t.rx.take().unwrap().await.unwrap();
        assert!(matches!(got, Dequeued::Redirect(Redirect::Twiml(_))));
        assert!(t.standing().is_none());
    }
}
