--
-- PostgreSQL database dump
--

\restrict 73HLpwItOHVskqEztFLehny1nd4ujPJsv0v518dRv9FeW8ELMNzcn79hr7AJZHI

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

ALTER TABLE IF EXISTS ONLY public."Odd ""name""; x" DROP CONSTRAINT IF EXISTS "Odd ""name""; x_pkey";
DROP TABLE IF EXISTS public."ümlaut";
DROP VIEW IF EXISTS public.v_slice;
DROP SEQUENCE IF EXISTS public.s1;
DROP TABLE IF EXISTS public.nocols;
DROP TABLE IF EXISTS public."Odd ""name""; x";
DROP PROCEDURE IF EXISTS public.p_atomic(IN a integer);
DROP TABLE IF EXISTS public.plain_t;
DROP FUNCTION IF EXISTS public.f_dollar(x integer);
DROP FUNCTION IF EXISTS public.f_atomic(a integer, b integer);
--
-- Name: f_atomic(integer, integer); Type: FUNCTION; Schema: public; Owner: rcbackup
--

CREATE FUNCTION public.f_atomic(a integer, b integer) RETURNS integer
    LANGUAGE sql
    BEGIN ATOMIC
 SELECT
         CASE
             WHEN (a > b) THEN a
             ELSE b
         END AS b;
 SELECT (a + b);
END;


ALTER FUNCTION public.f_atomic(a integer, b integer) OWNER TO rcbackup;

--
-- Name: f_dollar(integer); Type: FUNCTION; Schema: public; Owner: rcbackup
--

CREATE FUNCTION public.f_dollar(x integer) RETURNS text
    LANGUAGE plpgsql
    AS $_$ BEGIN RETURN 'a\b' || $q$ it's $q$ || x; END $_$;


ALTER FUNCTION public.f_dollar(x integer) OWNER TO rcbackup;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: plain_t; Type: TABLE; Schema: public; Owner: rcbackup
--

CREATE TABLE public.plain_t (
    a integer,
    b text
);


ALTER TABLE public.plain_t OWNER TO rcbackup;

--
-- Name: TABLE plain_t; Type: COMMENT; Schema: public; Owner: rcbackup
--

COMMENT ON TABLE public.plain_t IS 'Données: l''été — "quoted" /* c */ -- d';


--
-- Name: p_atomic(integer); Type: PROCEDURE; Schema: public; Owner: rcbackup
--

CREATE PROCEDURE public.p_atomic(IN a integer)
    LANGUAGE sql
    BEGIN ATOMIC
 INSERT INTO public.plain_t (a, b)
   VALUES (p_atomic.a, 'p;'::text);
END;


ALTER PROCEDURE public.p_atomic(IN a integer) OWNER TO rcbackup;

--
-- Name: Odd "name"; x; Type: TABLE; Schema: public; Owner: rcbackup
--

CREATE TABLE public."Odd ""name""; x" (
    id integer NOT NULL,
    "Café" text,
    v text,
    arr integer[]
);


ALTER TABLE public."Odd ""name""; x" OWNER TO rcbackup;

--
-- Name: nocols; Type: TABLE; Schema: public; Owner: rcbackup
--

CREATE TABLE public.nocols (
);


ALTER TABLE public.nocols OWNER TO rcbackup;

--
-- Name: s1; Type: SEQUENCE; Schema: public; Owner: rcbackup
--

CREATE SEQUENCE public.s1
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


ALTER TABLE public.s1 OWNER TO rcbackup;

--
-- Name: v_slice; Type: VIEW; Schema: public; Owner: rcbackup
--

CREATE VIEW public.v_slice AS
 SELECT "Odd ""name""; x".arr[1:2] AS s,
    "Odd ""name""; x".arr["Odd ""name""; x".id:"Odd ""name""; x".id] AS t,
    (("Odd ""name""; x".id)::text || ':'::text) AS c
   FROM public."Odd ""name""; x";


ALTER TABLE public.v_slice OWNER TO rcbackup;

--
-- Name: ümlaut; Type: TABLE; Schema: public; Owner: rcbackup
--

CREATE TABLE public."ümlaut" (
    x numeric DEFAULT 0.00000015,
    y double precision DEFAULT '1000000000000000000000000000000'::numeric
);


ALTER TABLE public."ümlaut" OWNER TO rcbackup;

--
-- Data for Name: Odd "name"; x; Type: TABLE DATA; Schema: public; Owner: rcbackup
--

COPY public."Odd ""name""; x" (id, "Café", v, arr) FROM stdin;
1	it's	back\\slash\nnew line\t\\.	{1,2,3}
2	Ünïcödé €	\\! touch /tmp/nope	\N
3	-- not a comment	/* nor this */ $$ $a$	{4}
\.


--
-- Data for Name: nocols; Type: TABLE DATA; Schema: public; Owner: rcbackup
--

COPY public.nocols  FROM stdin;
\.


--
-- Data for Name: plain_t; Type: TABLE DATA; Schema: public; Owner: rcbackup
--

COPY public.plain_t (a, b) FROM stdin;
1	x
2	\\.
\.


--
-- Data for Name: ümlaut; Type: TABLE DATA; Schema: public; Owner: rcbackup
--

COPY public."ümlaut" (x, y) FROM stdin;
2.5	30000000000
\.


--
-- Name: s1; Type: SEQUENCE SET; Schema: public; Owner: rcbackup
--

SELECT pg_catalog.setval('public.s1', 42, true);


--
-- Name: Odd "name"; x Odd "name"; x_pkey; Type: CONSTRAINT; Schema: public; Owner: rcbackup
--

ALTER TABLE ONLY public."Odd ""name""; x"
    ADD CONSTRAINT "Odd ""name""; x_pkey" PRIMARY KEY (id);


--
-- PostgreSQL database dump complete
--

\unrestrict 73HLpwItOHVskqEztFLehny1nd4ujPJsv0v518dRv9FeW8ELMNzcn79hr7AJZHI

