// The header's notifications menu: a button with how many of your stored
// notifications are unread (the server counts all of them, `unread`),
// opening the list of them (GET /me/notifications, newest first) below it,
// each worded in its item's currency. A live notification from the
// WebSocket reads the list again: the socket's message carries no stored id
// to add it by.
import { useInfiniteQuery, useMutation, useQueryClient, type InfiniteData } from '@tanstack/react-query';
import { useEffect, useId, useRef, useState } from 'react';
import { Link } from 'react-router-dom';

import * as endpoints from '../api/endpoints';
import type { NotificationPage, StoredNotification } from '../api/types';
import { currencyInData, describe, knownCurrency, rememberCurrency } from '../live/notify';
import { useNotifications } from '../live/useNotifications';
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

function Entry({ notification, onFollow }: { notification: StoredNotification; onFollow: () => void }) {
  const { data, read, at } = notification;
  return (
    <li className={read ? 'notification' : 'notification unread'}>
      {/* Said in words too: the unread look is not the only sign. */}
      {!read && <span className="tag">New</span>}
      <Link to={`/items/${data.item_id}`} onClick={onFollow}>
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

  const markAllRead = useMutation({
    mutationFn: (newestId: string) => endpoints.markNotificationsRead(newestId),
    onSuccess: () => {
      // Every loaded one is the newest or older: all read now, and so is
      // every older one not loaded. Then read the list again, in case one
      // arrived meanwhile (its count with it).
      queryClient.setQueryData<Pages>(queryKey, (data) =>
        data && {
          ...data,
          pages: data.pages.map((page) => ({ ...page, unread: 0, items: page.items.map((item) => ({ ...item, read: true })) })),
        },
      );
      readAgain();
    },
  });

  const [open, setOpen] = useState(false);
  const menu = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  const panelId = useId();
  const titleId = useId();

  // Open, the panel closes on Escape (focus back on its button) and on a
  // click anywhere else, as menus do.
  useEffect(() => {
    if (!open) return;
    const onKey = (event: KeyboardEvent) => {
      if (event.key !== 'Escape') return;
      setOpen(false);
      button.current?.focus();
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

  const toggle = () => {
    // Opening reads the list again: a notice sent while the socket was
    // reconnecting reached no one.
    if (!open) readAgain();
    setOpen(!open);
  };

  const notifications = query.data?.pages.flatMap((page) => page.items) ?? [];
  // The server's count of all of them, as of the newest page read (React
  // Query reads the pages again from the newest).
  const count = query.data?.pages[0]?.unread ?? 0;
  const unread = count > 0 ? String(count) : null;
  const newest = notifications[0];
  return (
    <div className="menu" ref={menu}>
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
      {/* Always there for aria-controls to name; filled only while open, so
          the list's text is not in the page twice (the toasts say it too). */}
      <section id={panelId} className="menu-panel" aria-labelledby={titleId} hidden={!open}>
        {open && (
          <>
            <div className="menu-head">
              <h2 id={titleId}>Your notifications</h2>
              {unread && newest && (
                <button type="button" className="secondary" disabled={markAllRead.isPending} onClick={() => markAllRead.mutate(newest.id)}>
                  Mark all as read
                </button>
              )}
            </div>
            <ProblemAlert error={query.error ?? markAllRead.error} />
            {query.isPending ? (
              <p>Loading…</p>
            ) : notifications.length === 0 ? (
              !query.isError && <p className="hint">Nothing yet. You hear here when you are outbid, your poison raises or runs out, and an auction you bid on closes.</p>
            ) : (
              <ul className="notification-list">
                {notifications.map((notification) => (
                  <Entry key={notification.id} notification={notification} onFollow={() => setOpen(false)} />
                ))}
              </ul>
            )}
            {query.hasNextPage && (
              <button type="button" className="secondary" onClick={() => void query.fetchNextPage()} disabled={query.isFetchingNextPage}>
                Load more
              </button>
            )}
          </>
        )}
      </section>
    </div>
  );
}
