// The header's notifications menu: a button with how many of your stored
// notifications are unread (the server counts all of them, `unread`),
// opening the list of them (GET /me/notifications, newest first) below it,
// each worded in its item's currency. A live notification from the
// WebSocket reads the list again (the socket's message carries no stored id
// to add it by), and so does the socket (re)opening: a notice sent while it
// was down reached no one live. Closed, the list is kept to its first page,
// so those reads cost one request, not one per page loaded.
import { useInfiniteQuery, useMutation, useQueryClient, type InfiniteData } from '@tanstack/react-query';
import { useEffect, useId, useRef, useState } from 'react';
import { Link, useLocation } from 'react-router-dom';

import * as endpoints from '../api/endpoints';
import type { NotificationPage, StoredNotification } from '../api/types';
import { currencyInData, describe, knownCurrency, rememberCurrency } from '../live/notify';
import { useNotifications, useNotificationsConnected } from '../live/useNotifications';
import { ProblemAlert } from './ProblemAlert';

type Pages = InfiniteData<NotificationPage, string | null>;

/** A page of stored notifications; their items' currencies kept for the live toasts. */
async function readPage(cursor: string | null): Promise<NotificationPage> {
  const page = await endpoints.myNotifications(cursor);
  for (const { data } of page.items) {
    const currency = currencyInData(data);
    if (currency) rememberCurrency(data.item_id, currency);
  }
  return page;
}

/**
 * The loaded pages once the server marked `upToId` and every older one
 * read: those are read here too, while a newer one (it arrived while the
 * mark was on its way) stays as it was, and the count is of those newer
 * unread ones (all of them are loaded: they are above it). `undefined`
 * (nothing to change) when `upToId` is no longer loaded.
 */
function markedUpTo(data: Pages, upToId: string): Pages | undefined {
  const all = data.pages.flatMap((page) => page.items);
  const at = all.findIndex((notification) => notification.id === upToId);
  if (at < 0) return undefined;
  const unread = all.slice(0, at).filter((notification) => !notification.read).length;
  let index = 0;
  return {
    ...data,
    pages: data.pages.map((page) => ({
      ...page,
      unread,
      items: page.items.map((item) => (index++ >= at ? { ...item, read: true } : item)),
    })),
  };
}

function Entry({ notification }: { notification: StoredNotification }) {
  const { data, read, at } = notification;
  return (
    <li className={read ? 'notification' : 'notification unread'}>
      {/* Said in words too: the unread look is not the only sign. */}
      {!read && <span className="tag">New</span>}
      {/* Following it closes the menu: the route changes. */}
      <Link to={`/items/${encodeURIComponent(data.item_id)}`}>
        {data.item_title ?? 'The auction'}
      </Link>
      {/* Worded as the live toast, in the item's currency with the server's
          decimals (one stored before notices said it: as a toast would be). */}
      <p>{describe(notification, currencyInData(data) ?? knownCurrency(data.item_id))}</p>
      <time dateTime={at}>{new Date(at).toLocaleString()}</time>
    </li>
  );
}

export function NotificationsMenu({ userId }: { userId: string }) {
  const queryClient = useQueryClient();
  const queryKey = ['notifications', userId];
  const query = useInfiniteQuery({
    queryKey,
    queryFn: ({ pageParam }) => readPage(pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  // React Query reads the loaded pages again from the newest, each by the
  // cursor of the one before, so a newcomer on top hides nothing below.
  const readAgain = () => void queryClient.invalidateQueries({ queryKey });
  useNotifications(readAgain);
  const connected = useNotificationsConnected();
  useEffect(() => {
    if (connected) void queryClient.invalidateQueries({ queryKey: ['notifications', userId] });
  }, [connected, queryClient, userId]);

  const [open, setOpen] = useState(false);
  // Said politely when all were marked read (the button that did it is gone).
  const [announcement, setAnnouncement] = useState('');
  const menu = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const list = useRef<HTMLUListElement>(null);
  // The entry to focus once it is shown: the first of a page loaded by "Load more".
  const focusEntry = useRef<number | null>(null);
  const panelId = useId();
  const titleId = useId();
  const focusInMenu = () => menu.current?.contains(document.activeElement) ?? false;

  const markAllRead = useMutation({
    mutationFn: (upToId: string) => endpoints.markNotificationsRead(upToId),
    onSuccess: (_, upToId) => {
      // Read here too are the sent one and every older one, not one that
      // arrived meanwhile; then the list is read again, its count with it.
      queryClient.setQueryData<Pages>(['notifications', userId], (data) => data && markedUpTo(data, upToId));
      setAnnouncement('All marked as read');
      // The button goes with the last unread one: the focus goes to the
      // panel's heading rather than to the page's start.
      if (focusInMenu()) heading.current?.focus();
      readAgain();
    },
  });

  // A new route (an entry followed, the browser's back) closes the menu.
  const location = useLocation();
  const [shownAt, setShownAt] = useState(location.key);
  if (shownAt !== location.key) {
    setShownAt(location.key);
    setOpen(false);
  }

  // Open, the panel closes on Escape (focus back on its button when it was
  // in the menu) and on a click anywhere else, as menus do.
  useEffect(() => {
    if (!open) return;
    const onKey = (event: KeyboardEvent) => {
      // Escape handled already (a dialog of the page's own) is not ours.
      if (event.key !== 'Escape' || event.defaultPrevented) return;
      const inside = menu.current?.contains(document.activeElement) ?? false;
      setOpen(false);
      if (inside) button.current?.focus();
    };
    const onPointer = (event: PointerEvent) => {
      if (!menu.current?.contains(event.target as Node)) setOpen(false);
    };
    document.addEventListener('keydown', onKey);
    document.addEventListener('pointerdown', onPointer);
    return () => {
      document.removeEventListener('keydown', onKey);
      document.removeEventListener('pointerdown', onPointer);
    };
  }, [open]);

  // Closed, only the first page is kept: a live notice or the socket's
  // reconnect then reads one page again, not every one loaded.
  useEffect(() => {
    if (open) return;
    queryClient.setQueryData<Pages>(['notifications', userId], (data) =>
      data && data.pages.length > 1 ? { pages: data.pages.slice(0, 1), pageParams: data.pageParams.slice(0, 1) } : undefined,
    );
  }, [open, queryClient, userId]);

  const notifications = query.data?.pages.flatMap((page) => page.items) ?? [];

  // Once a page loaded by "Load more" shows, its first entry takes the
  // focus (the button may be gone: that was the last page).
  const shown = notifications.length;
  useEffect(() => {
    const at = focusEntry.current;
    if (at === null) return;
    const link = list.current?.querySelectorAll<HTMLAnchorElement>('a')[at];
    if (!link) return;
    focusEntry.current = null;
    // Unless the focus moved on meanwhile (the button's going left it nowhere).
    if (focusInMenu() || document.activeElement === document.body) link.focus();
  }, [shown]);

  const loadMore = async () => {
    // aria-disabled rather than disabled while loading: the focus stays.
    if (query.isFetchingNextPage) return;
    focusEntry.current = shown;
    const result = await query.fetchNextPage();
    if (result.isError) focusEntry.current = null;
  };

  const toggle = () => {
    if (!open) {
      // An old failure to mark is not news on reopening.
      markAllRead.reset();
      setAnnouncement('');
      // With the socket down (or the last read failed), a notice may be
      // stored unheard: read the list again. Open, the socket keeps it current.
      if (!connected || query.isError) readAgain();
    }
    setOpen(!open);
  };

  // The server's count of all of them, as of the newest page read (React
  // Query reads the pages again from the newest).
  const count = query.data?.pages[0]?.unread ?? 0;
  const unread = count > 0 ? String(count) : null;
  const newest = notifications[0];
  return (
    <div
      className="menu"
      ref={menu}
      // Whether the socket is open (the end-to-end test waits for it).
      data-live={connected ? 'connected' : 'offline'}
      // Focus leaving the menu by keyboard closes it. (None going nowhere,
      // as on a click on the panel's text, does not.)
      onBlur={(event) => {
        const to = event.relatedTarget;
        if (open && to instanceof Node && !menu.current?.contains(to)) setOpen(false);
      }}
    >
      <button
        ref={button}
        type="button"
        className="link"
        aria-expanded={open}
        aria-controls={panelId}
        aria-label={unread ? `Notifications, ${unread} unread` : 'Notifications'}
        onClick={toggle}
      >
        Notifications
        {unread && (
          <span className="badge" aria-hidden="true">
            {unread}
          </span>
        )}
      </button>
      {/* Always there, its text changing, so it is announced. */}
      <p role="status" className="visually-hidden">
        {announcement}
      </p>
      {/* Always there for aria-controls to name; filled only while open, so
          the list's text is not in the page twice (the toasts say it too). */}
      <section id={panelId} className="menu-panel" aria-labelledby={titleId} hidden={!open}>
        {open && (
          <>
            <div className="menu-head">
              <h2 id={titleId} ref={heading} tabIndex={-1}>
                Your notifications
              </h2>
              {unread && newest && (
                <button
                  type="button"
                  className="secondary"
                  aria-disabled={markAllRead.isPending || undefined}
                  onClick={() => {
                    if (!markAllRead.isPending) markAllRead.mutate(newest.id);
                  }}
                >
                  Mark all as read
                </button>
              )}
            </div>
            <ProblemAlert error={query.error} />
            <ProblemAlert error={markAllRead.error} />
            {query.isPending ? (
              <p>Loading…</p>
            ) : notifications.length === 0 ? (
              !query.isError && <p className="hint">Nothing yet. You hear here when you are outbid, your poison raises or runs out, and an auction you bid on closes.</p>
            ) : (
              <ul className="notification-list" ref={list}>
                {notifications.map((notification) => (
                  <Entry key={notification.id} notification={notification} />
                ))}
              </ul>
            )}
            {query.hasNextPage && (
              <button
                type="button"
                className="secondary"
                aria-disabled={query.isFetchingNextPage || undefined}
                onClick={() => void loadMore()}
              >
                Load more
              </button>
            )}
          </>
        )}
      </section>
    </div>
  );
}
