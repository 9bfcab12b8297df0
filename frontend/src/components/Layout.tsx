// The page frame: a skip link, the navigation (with your notifications and
// account once logged in), the page, and a calm notice while the server
// asks us to slow down.
import { useEffect, useState } from 'react';
import { Link, NavLink, Outlet, useNavigate } from 'react-router-dom';

import { onSlowDown } from '../api/client';
import { useAuth } from '../auth/useAuth';
import { NotificationsMenu } from './NotificationsMenu';

export function SlowDownNotice() {
  const [seconds, setSeconds] = useState(0);
  useEffect(() => onSlowDown((wait) => setSeconds(wait)), []);
  useEffect(() => {
    if (seconds <= 0) return;
    const timer = setTimeout(() => setSeconds((s) => s - 1), 1000);
    return () => clearTimeout(timer);
  }, [seconds]);
  if (seconds <= 0) return null;
  return (
    <p className="notice" role="status">
      Slow down a little — retrying in {seconds} s.
    </p>
  );
}

export function Layout() {
  const { status, user, logout } = useAuth();
  const navigate = useNavigate();
  const logOut = async () => {
    await logout();
    void navigate('/login');
  };
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link to="/" className="brand">
          Poison Pill
        </Link>
        <nav aria-label="Main">
          <NavLink to="/" end>
            Auctions
          </NavLink>
          {status === 'authenticated' && <NavLink to="/me/bids">My bids</NavLink>}
          {user?.role === 'admin' && (
            <>
              <NavLink to="/admin" end>
                Admin
              </NavLink>
              <NavLink to="/admin/audit">Audit</NavLink>
            </>
          )}
          {status === 'authenticated' && user ? (
            <>
              <NotificationsMenu userId={user.id} />
              {/* Your name, and where to change it (the password too). */}
              <NavLink to="/account" className="account-name" aria-label={`${user.display_name}, your account`} title={user.display_name}>
                {user.display_name}
              </NavLink>
              <button type="button" className="link" onClick={() => void logOut()}>
                Log out
              </button>
            </>
          ) : (
            <>
              <NavLink to="/login">Log in</NavLink>
              <NavLink to="/register">Register</NavLink>
            </>
          )}
        </nav>
      </header>
      <SlowDownNotice />
      <main id="main" tabIndex={-1}>
        {status === 'loading' ? <p>Loading…</p> : <Outlet />}
      </main>
    </>
  );
}
