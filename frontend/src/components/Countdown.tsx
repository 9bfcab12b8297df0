// Time left until `until`, ticking every second.
import { useEffect, useState } from 'react';

import { timeLeft } from '../time';

export function Countdown({ until }: { until: string }) {
  const [now, setNow] = useState(() => new Date());
  useEffect(() => {
    const timer = setInterval(() => setNow(new Date()), 1000);
    return () => clearInterval(timer);
  }, []);
  // Not a live region: announcing every second would drown everything else.
  return <time dateTime={until}>{timeLeft(new Date(until), now)}</time>;
}
