//! The effective database name: what libpq will connect to once the defaults are applied.

use super::*;

/// The final values of the settings that decide the database name; `L` says where the dbname
/// setting is (to rewrite it in place).
pub(super) struct Finals<'a, L> {
    pub(super) dbname: Option<(Cow<'a, [u8]>, L)>,
    pub(super) user: Option<Cow<'a, [u8]>>,
    pub(super) service: Option<Cow<'a, [u8]>>,
    pub(super) servicefile: Option<Cow<'a, [u8]>>,
}

impl<L> Default for Finals<'_, L> {
    fn default() -> Self {
        Finals {
            dbname: None,
            user: None,
            service: None,
            servicefile: None,
        }
    }
}

impl<'a> Finals<'a, Loc> {
    pub(super) fn take(&mut self, t: Tok<'a>) {
        match &*t.key {
            b"dbname" => {
                self.dbname = Some((
                    t.val,
                    Loc {
                        span: t.span,
                        kind: t.kind,
                    },
                ))
            }
            b"user" => self.user = Some(t.val),
            b"service" => self.service = Some(t.val),
            b"servicefile" => self.servicefile = Some(t.val),
            _ => {}
        }
    }
}

pub(super) fn os_user<'a>(env: &dyn PgEnv) -> Result<Cow<'a, [u8]>, RewriteError> {
    env.os_user()
        .filter(|u| !u.is_empty())
        .map(|u| Cow::Owned(u.into_bytes()))
        .ok_or_else(|| {
            syntax("no database and no user name given, and the OS user name is unknown")
        })
}

/// The user libpq ends up with (`connectOptions2`): `PQsetdbLogin`'s login, else the setting
/// (explicitly empty: the OS user), else the service's, else `PGUSER`, else the OS user.
pub(super) fn user_name<'a, L>(
    f: &Finals<'a, L>,
    login: Option<&'a [u8]>,
    svc: Option<&ServiceVals>,
    env: &dyn PgEnv,
) -> Result<Cow<'a, [u8]>, RewriteError> {
    if let Some(l) = login.filter(|l| !l.is_empty()) {
        return Ok(Cow::Borrowed(l));
    }
    match &f.user {
        Some(u) if !u.is_empty() => Ok(u.clone()),
        Some(_) => os_user(env),
        None => match svc.and_then(|s| s.user.as_ref()) {
            Some(u) if !u.is_empty() => Ok(Cow::Owned(u.clone())),
            Some(_) => os_user(env),
            None => match env.var("PGUSER") {
                Some(u) if !u.is_empty() => Ok(Cow::Owned(u.into_bytes())),
                _ => os_user(env),
            },
        },
    }
}

/// The database libpq will connect to, given the explicit settings `f`.
pub(super) fn effective<'a, L>(
    f: &Finals<'a, L>,
    login: Option<&'a [u8]>,
    env: &dyn PgEnv,
) -> Result<Cow<'a, [u8]>, RewriteError> {
    if let Some((v, _)) = &f.dbname {
        if !v.is_empty() {
            return Ok(v.clone());
        }
        // Explicitly empty: neither the service nor PGDATABASE apply, the user name does.
        let svc = service_values(f, env)?;
        return user_name(f, login, svc.as_ref(), env);
    }
    let svc = service_values(f, env)?;
    if let Some(db) = svc.as_ref().and_then(|s| s.dbname.as_ref()) {
        if !db.is_empty() {
            return Ok(Cow::Owned(db.clone()));
        }
        return user_name(f, login, svc.as_ref(), env);
    }
    if let Some(v) = env.var("PGDATABASE") {
        if !v.is_empty() {
            return Ok(Cow::Owned(v.into_bytes()));
        }
    }
    user_name(f, login, svc.as_ref(), env)
}

pub(super) fn run_decide(
    name: &[u8],
    decide: &mut Decide<'_>,
) -> Result<Option<String>, RewriteError> {
    let name =
        std::str::from_utf8(name).map_err(|_| syntax("the database name is not valid UTF-8"))?;
    match decide(name) {
        Err(m) => Err(RewriteError::Refused(m)),
        Ok(None) => Ok(None),
        Ok(Some(new)) if new == name => Ok(None),
        Ok(Some(new)) if new.is_empty() || new.contains('\0') => Err(RewriteError::Refused(
            format!("the new name for database {name:?} is empty or contains a NUL byte"),
        )),
        Ok(Some(new)) => Ok(Some(new)),
    }
}
